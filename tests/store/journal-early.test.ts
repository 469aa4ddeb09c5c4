/**
 * The journaled store is ready before its engine (docs/architecture.md, "Start-up"): a new store,
 * or one with a valid checkpoint of a clean stop, takes appends while the embedded engine's open
 * is held back, and they survive kill -9; a checkpoint the engine was written after is not
 * trusted; an engine that fails to open after the store was ready turns the store unhealthy and
 * loses nothing acknowledged. Real rocksdb stores; the processes that are killed are real child
 * processes (fixtures/early-child.ts), because an engine opened in this process stays open (and
 * its directory locked) until the process exits.
 */
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleFixture } from "../support/bundle-fixture.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectOnDiskEngine, formatSessionKey, JOURNAL_DIR, openSessionLog } from "../../host/src/store/index.js";
import { CHECKPOINT_FILE } from "../../host/src/store/journal/index.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-early-"));
let dirs = 0;
const freshDir = () => join(root, `db${++dirs}`);
let child = "";
let cleanup = () => {};

beforeAll(async () => {
  ({ child, cleanup } = await bundleFixture(join(import.meta.dirname, "fixtures/early-child.ts"), "early"));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
  cleanup();
});

const key = (s: number) => formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: `p${s}` });
const message = (content: string, idempotencyKey?: string) => ({
  kind: "message_received" as const,
  data: { content, channel: "ws", account: "default", peer: "p", ...(idempotencyKey ? { idempotencyKey } : {}) },
});

/** A running child and the lines it printed so far. */
function run(args: string[]): { proc: ChildProcessWithoutNullStreams; lines: string[]; waitFor(pred: (l: string) => boolean, ms?: number): Promise<string> } {
  const proc = spawn(process.execPath, [child, ...args], { stdio: ["pipe", "pipe", "pipe"] });
  const lines: string[] = [];
  let buf = "";
  let stderr = "";
  const waiters: { pred: (l: string) => boolean; resolve(l: string): void }[] = [];
  proc.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  proc.stdout.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    for (const l of parts) {
      lines.push(l);
      for (const w of waiters.filter((w) => w.pred(l))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(l);
      }
    }
  });
  return {
    proc,
    lines,
    waitFor(pred, ms = 60_000) {
      const seen = lines.find(pred);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((res, rej) => {
        const timer = setTimeout(() => rej(new Error(`no matching line in ${ms} ms; got ${JSON.stringify(lines)}; stderr: ${stderr}`)), ms);
        const onExit = (code: number | null) => rej(new Error(`child exited (${code}); got ${JSON.stringify(lines)}; stderr: ${stderr}`));
        proc.once("exit", onExit);
        waiters.push({
          pred,
          resolve: (l) => {
            clearTimeout(timer);
            proc.off("exit", onExit);
            res(l);
          },
        });
      });
    },
  };
}

const kill9 = async (proc: ChildProcessWithoutNullStreams) => {
  proc.kill("SIGKILL");
  if (proc.exitCode === null && proc.signalCode === null) await new Promise((r) => proc.once("exit", r));
};

/** The store's content as the verify child reads it after a normal open. */
async function verify(url: string, count: number): Promise<{ sessions: Record<string, [string, number, string | undefined][]>; pending: string[] }> {
  const v = run(["verify", url, String(count)]);
  return JSON.parse(await v.waitFor((l) => l.startsWith("{")));
}

/** Each acknowledged append (`ack <session> <seq>` lines) is in the store once, at that seq. */
function expectAcknowledged(lines: string[], sessions: Record<string, [string, number, string | undefined][]>): number {
  let acks = 0;
  for (const l of lines) {
    const m = /^ack (\d+) (\d+)$/.exec(l);
    if (!m) continue;
    acks++;
    const events = sessions[m[1]!]!;
    expect(events.filter((e) => e[1] === Number(m[2])).length).toBe(1);
  }
  for (const events of Object.values(sessions)) {
    // No seq twice, none missing, each idempotency key once.
    expect(events.map((e) => e[1])).toEqual(events.map((_, i) => i + 1));
    const idem = events.flatMap((e) => (e[2] == null ? [] : [e[2]]));
    expect(new Set(idem).size).toBe(idem.length);
  }
  return acks;
}

describe("journaled store ready before its engine", () => {
  it("a new store takes turns while its engine has not opened; after kill -9 every acknowledged append is there once", { timeout: 120_000 }, async () => {
    const dir = freshDir();
    const url = `rocksdb://${dir}`;
    const c = run(["append", url, "0", "8"]);
    await c.waitFor((l) => l === "done");
    // Acknowledged with the engine's open never begun: no engine directory was even created.
    expect(c.lines.filter((l) => l.startsWith("engine "))).toEqual(Array(8).fill("engine closed"));
    expect(detectOnDiskEngine(dir)).toBeUndefined();
    await kill9(c.proc);
    const { sessions, pending } = await verify(url, 8);
    expect(expectAcknowledged(c.lines, sessions)).toBe(16);
    for (let s = 0; s < 8; s++) expect(sessions[s]!.map((e) => e[0])).toEqual(["message_received", "turn_started", "assistant_text", "turn_ended"]);
    expect(pending).toEqual([]);
  });

  it("with a clean stop's checkpoint: new sessions need no engine, an existing one waits for it; after kill -9 all is there once and the checkpoint is gone", {
    timeout: 120_000,
  }, async () => {
    const dir = freshDir();
    const url = `rocksdb://${dir}`;
    const seed = run(["seed", url, "3"]);
    await seed.waitFor((l) => l === "seeded");
    await new Promise((r) => seed.proc.once("exit", r));
    expect(existsSync(join(dir, JOURNAL_DIR, CHECKPOINT_FILE))).toBe(true);
    // Sessions 3..7 are new; session 1 exists (its history and last seq are in the engine).
    const c = run(["append", url, "3", "5", "1"]);
    await c.waitFor((l) => l === "done");
    const engine = c.lines.filter((l) => l.startsWith("engine "));
    expect(engine.slice(0, 5)).toEqual(Array(5).fill("engine closed"));
    // The existing session's turn needed the engine: its open began then.
    expect(engine[5]).toBe("engine open");
    // Read and deleted at open: a crash never leaves it to be trusted again.
    expect(existsSync(join(dir, JOURNAL_DIR, CHECKPOINT_FILE))).toBe(false);
    await kill9(c.proc);
    const { sessions } = await verify(url, 8);
    expect(expectAcknowledged(c.lines, sessions)).toBe(12);
    expect(sessions[1]!.map((e) => e[1])).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(sessions[1]![0]![2]).toBe("seed1");
  });

  it("a stop before the engine's open began keeps it from opening later: the checkpoint stays valid", { timeout: 120_000 }, async () => {
    const dir = freshDir();
    const url = `rocksdb://${dir}`;
    const seed = run(["seed", url, "2"]);
    await seed.waitFor((l) => l === "seeded");
    await new Promise((r) => seed.proc.once("exit", r));
    // Closed while the engine waits for its signal, which then settles (a gateway's first /health
    // answered while it stops): the engine must not open after the checkpoint was written again.
    const c = run(["close-early", url]);
    expect(await c.waitFor((l) => l.startsWith("engine "))).toBe("engine closed");
    await new Promise((r) => (c.proc.exitCode !== null ? r(undefined) : c.proc.once("exit", r)));
    expect(existsSync(join(dir, JOURNAL_DIR, CHECKPOINT_FILE))).toBe(true);
    const messages: string[] = [];
    const log = await openSessionLog({ url, logger: { info: (m) => messages.push(m), warn: (m) => messages.push(m) } });
    expect(messages.filter((m) => /checkpoint/.test(m))).toEqual([]);
    await log.close();
  });

  it("a checkpoint the engine was written after is not trusted, nor a damaged one", { timeout: 120_000 }, async () => {
    const dir = freshDir();
    const url = `rocksdb://${dir}`;
    const checkpoint = join(dir, JOURNAL_DIR, CHECKPOINT_FILE);
    const warnings: string[] = [];
    const logger = { info: (m: string) => warnings.push(m), warn: (m: string) => warnings.push(m) };
    let log = await openSessionLog({ url, logger });
    await log.append(key(1), [message("one", "i1")]);
    await log.close();
    const old = join(root, "old-checkpoint");
    copyFileSync(checkpoint, old);
    // The next process writes session 2 into the engine (and a checkpoint of its own).
    log = await openSessionLog({ url, logger });
    expect(await log.append(key(2), [message("two", "i2"), message("two again")])).toEqual([1, 2]);
    await log.close();
    expect(existsSync(checkpoint)).toBe(true);
    // The old checkpoint put back (a restored copy, or a process that never deleted it): it says
    // session 2 does not exist. Trusting it would number the next append 1.
    const current = readFileSync(checkpoint);
    copyFileSync(old, checkpoint);
    warnings.length = 0;
    log = await openSessionLog({ url, logger });
    expect(warnings.some((w) => /checkpoint does not describe its engine/.test(w))).toBe(true);
    expect(await log.append(key(2), [message("three")])).toEqual([3]);
    await expect(log.append(key(3), [message("dup", "i2")])).rejects.toMatchObject({ name: "DuplicateEventError" });
    await log.close();
    // A damaged one (a flipped byte in the filter) is refused by its checksum.
    const damaged = Buffer.from(readFileSync(checkpoint));
    damaged[damaged.length - 100]! ^= 0xff;
    writeFileSync(checkpoint, damaged);
    warnings.length = 0;
    log = await openSessionLog({ url, logger });
    expect(warnings.some((w) => /checkpoint .* is not usable \(its checksum does not verify\)/.test(w))).toBe(true);
    expect(await log.append(key(2), [message("four")])).toEqual([4]);
    await log.close();
    expect(current.length).toBeGreaterThan(0);
  });

  it("an engine that fails to open after the store was ready turns it unhealthy; nothing acknowledged is lost", { timeout: 120_000 }, async () => {
    const dir = freshDir();
    const url = `rocksdb://${dir}`;
    const c = run(["append", url, "0", "4"]);
    await c.waitFor((l) => l === "done");
    expect(c.lines.filter((l) => l.startsWith("engine "))).toEqual(Array(4).fill("engine closed"));
    // Another process takes the engine's directory (its own lock) before this one's engine opens.
    const holder = run(["hold", url]);
    await holder.waitFor((l) => l === "held");
    c.proc.stdin.write("start\n");
    const unhealthy = await c.waitFor((l) => l.startsWith("unhealthy "));
    expect(unhealthy).toMatch(/^unhealthy store_unavailable .*its engine did not open: .*another exoclaw process/);
    c.proc.stdin.write("append\n");
    expect(await c.waitFor((l) => l.startsWith("refused ") || l === "accepted")).toBe("refused unavailable");
    await kill9(c.proc);
    await kill9(holder.proc);
    const { sessions } = await verify(url, 4);
    expect(expectAcknowledged(c.lines, sessions)).toBe(8);
  });
});
