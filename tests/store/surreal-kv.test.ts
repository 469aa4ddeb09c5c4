import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleFixture } from "../support/bundle-fixture.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createSurrealSessionLog, formatSessionKey, StoreError } from "../../host/src/store/index.js";
import { sessionLogSuite } from "./session-log.suite.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-kv-"));
let dirs = 0;
const freshUrl = () => `surrealkv://${join(root, `db${++dirs}`)}`;

afterAll(() => rmSync(root, { recursive: true, force: true }));

sessionLogSuite("surreal surrealkv://", (options) => createSurrealSessionLog({ url: freshUrl(), ...options }));

let child = "";
let cleanup = () => {};

/** Runs the child; resolves with its JSON output line, exit code and run time. */
function runChild(mode: string, url: string): Promise<{ out: Record<string, unknown>; code: number | null; ms: number }> {
  const t0 = Date.now();
  return new Promise((res, rej) => {
    const p = spawn(process.execPath, [child, mode, url], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 15_000);
    p.on("error", rej);
    p.on("exit", (code) => {
      clearTimeout(timer);
      try {
        res({ out: JSON.parse(stdout.trim().split("\n").pop() ?? "null") as Record<string, unknown>, code, ms: Date.now() - t0 });
      } catch {
        rej(new Error(`child ${mode} failed (exit ${code}): ${stderr || stdout}`));
      }
    });
  });
}

describe("surrealkv persistence", () => {
  beforeAll(async () => {
    ({ child, cleanup } = await bundleFixture(join(import.meta.dirname, "fixtures/kv-child.ts"), "store"));
  });
  afterAll(() => cleanup());

  it("keeps events across processes, and a process with a closed store exits by itself", async () => {
    const url = freshUrl();
    const w = await runChild("write", url);
    expect(w.code).toBe(0);
    expect(w.out).toEqual({ seqs: [1, 2, 3, 4, 5] });
    const r = await runChild("read", url);
    expect(r.code).toBe(0);
    expect(r.out).toEqual({
      seqs: [1, 2, 3, 4, 5],
      history: [
        { role: "user", content: [{ type: "text", text: "remember the walrus" }] },
        { role: "assistant", content: [{ type: "text", text: "I will remember the walrus." }] },
      ],
      hits: [1, 3],
      pending: [5],
      dup: 1,
      next: [6],
    });
  });

  it("closes and reopens in the same process", async () => {
    const url = freshUrl();
    const k = formatSessionKey({ agent: "main", channel: "cli", account: "local", peer: "me" });
    const a = await createSurrealSessionLog({ url });
    await a.append(k, [
      { kind: "message_received", data: { content: "persist me please", channel: "cli", account: "local", peer: "me", idempotencyKey: "once" } },
    ]);
    await a.close();
    const b = await createSurrealSessionLog({ url });
    expect((await b.read(k)).map((e) => e.seq)).toEqual([1]);
    expect(await b.append(k, [{ kind: "assistant_text", data: { text: "persisted" } }])).toEqual([2]);
    expect((await b.search("persist")).map((h) => h.event.seq).sort()).toEqual([1, 2]);
    await expect(
      b.append(k, [{ kind: "message_received", data: { content: "again", channel: "cli", account: "local", peer: "me", idempotencyKey: "once" } }]),
    ).rejects.toMatchObject({ code: "duplicate" });
    // A second log on the same directory in this process shares the datastore.
    const c = await createSurrealSessionLog({ url });
    expect((await c.info(k))!.lastSeq).toBe(2);
    await expect(createSurrealSessionLog({ url, database: "other" })).rejects.toMatchObject({ code: "invalid_argument" });
    await b.close();
    await c.close();
  });

  it("fails fast with a clear error when another process holds the directory", async () => {
    const url = freshUrl();
    const p = spawn(process.execPath, [child, "hold", url], { stdio: ["pipe", "pipe", "inherit"] });
    try {
      await new Promise<void>((res, rej) => {
        p.stdout!.on("data", (d: Buffer) => d.toString().includes("ready") && res());
        p.on("exit", (code) => rej(new Error(`holder exited with ${code}`)));
      });
      const t0 = Date.now();
      const err = await createSurrealSessionLog({ url }).catch((e: unknown) => e);
      expect(Date.now() - t0).toBeLessThan(5_000);
      expect(err).toBeInstanceOf(StoreError);
      expect(err).toMatchObject({ code: "unavailable" });
      expect((err as Error).message).toContain(url);
      expect((err as Error).message).toMatch(/another exoclaw process/);
    } finally {
      p.stdin!.end();
      await new Promise((r) => p.on("exit", r));
    }
  });
});
