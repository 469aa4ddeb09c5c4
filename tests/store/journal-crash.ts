/**
 * The journal's kill -9 test, shared by journal.test.ts (short) and journal.fault.test.ts
 * (more rounds): a child process appends turns from 50 sessions at once (group commits always
 * in flight) and is killed with SIGKILL after some acknowledged appends; a new process then opens
 * the store. Every acknowledged append must be there, at the seq it was acknowledged with,
 * nothing twice (each idempotency key once, seqs without gaps), and the store must open cleanly.
 */
import { spawn } from "node:child_process";
import { join } from "node:path";
import { bundleFixture } from "../support/bundle-fixture.js";
import { expect } from "vitest";

/** Bundles the child (inside the repository so node_modules resolve); returns its path and a cleanup. */
export async function buildJournalChild(): Promise<{ child: string; cleanup(): void }> {
  return bundleFixture(join(import.meta.dirname, "fixtures/journal-child.ts"), "journal");
}

type Ack = { s: number; t: number; seq: number; what: "m" | "e" };

/** Runs `hammer` until `acks` appends are acknowledged (at least), then SIGKILLs it; returns the acknowledged appends. */
export function hammerAndKill(child: string, url: string, acks: number, sessions = 50): Promise<Ack[]> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [child, "hammer", url, String(sessions)], { stdio: ["ignore", "pipe", "pipe"] });
    const got: Ack[] = [];
    let buf = "";
    let stderr = "";
    let killed = false;
    const timer = setTimeout(() => {
      p.kill("SIGKILL");
      rej(new Error(`hammer made only ${got.length} acknowledged appends in 60 s: ${stderr}`));
    }, 60_000);
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      const lines = buf.split("\n");
      buf = lines.pop()!;
      for (const line of lines) {
        const m = /^ack (\d+) (\d+) (\d+) ([me])$/.exec(line);
        if (m) got.push({ s: Number(m[1]), t: Number(m[2]), seq: Number(m[3]), what: m[4] as "m" | "e" });
      }
      if (!killed && got.length >= acks) {
        killed = true;
        p.kill("SIGKILL");
      }
    });
    p.on("exit", (code, signal) => {
      clearTimeout(timer);
      if (signal === "SIGKILL" && killed) res(got);
      else rej(new Error(`hammer exited (${code ?? signal}) before it was killed: ${stderr}`));
    });
  });
}

/** Opens the store in a new process and returns every session's events and the pending turns. */
export function verify(child: string, url: string, sessions = 50): Promise<{ sessions: Record<string, [string, number, string | null][]>; pending: string[] }> {
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [child, "verify", url, String(sessions)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d: Buffer) => (out += d.toString()));
    p.stderr.on("data", (d: Buffer) => (err += d.toString()));
    p.on("exit", (code) => {
      if (code !== 0) return rej(new Error(`verify exited ${code}: ${err}`));
      try {
        res(JSON.parse(out.trim().split("\n").pop()!));
      } catch (e) {
        rej(new Error(`verify printed no JSON: ${out} ${err} (${(e as Error).message})`));
      }
    });
  });
}

/** Kills `rounds` times and checks the store after each restart; returns how many appends were acknowledged in all. */
export async function crashRounds(child: string, url: string, rounds: number, acksPerRound: number): Promise<number> {
  const acked: Ack[] = [];
  for (let round = 0; round < rounds; round++) {
    acked.push(...(await hammerAndKill(child, url, acksPerRound)));
    const state = await verify(child, url);
    const keys = new Set<string>();
    for (const [s, events] of Object.entries(state.sessions)) {
      // Seqs 1..n without gaps, each idempotency key once.
      expect(events.map((e) => e[1])).toEqual(events.map((_, i) => i + 1));
      for (const [kind, , k] of events) {
        if (kind !== "message_received") continue;
        expect(keys.has(k!), `idempotency key ${k} stored twice (session ${s})`).toBe(false);
        keys.add(k!);
      }
    }
    for (const a of acked) {
      const e = state.sessions[String(a.s)]![a.seq - 1];
      expect(e, `acknowledged append of session ${a.s} turn ${a.t} at seq ${a.seq} is missing`).toBeDefined();
      if (a.what === "m") expect(e).toEqual(["message_received", a.seq, `k${a.s}-${a.t}`]);
      else expect(e![0]).toBe("assistant_text");
    }
  }
  return acked.length;
}
