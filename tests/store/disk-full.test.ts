/**
 * The embedded SurrealDB store on a full disk (a real tmpfs mount; needs root): appends fail with
 * StoreError `disk_full`, every queued append of the group commit settles, and since the engine
 * (SurrealDB 3.0.2, surrealkv) takes no writes again in this process, the log reports itself
 * broken once (`health()`, `onUnhealthy`) and later writes fail at once instead of each waiting
 * `queryTimeoutMs`; reads still answer. See docs/reliability.md ("Full disk").
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toErrorObject } from "../../host/src/protocol/jsonrpc.js";
import { readdirSync, statSync } from "node:fs";
import {
  createSurrealSessionLog,
  formatSessionKey,
  JOURNAL_DIR,
  openSessionLog,
  StoreError,
  type SessionLog,
  type StoreHealth,
} from "../../host/src/store/index.js";

const isRoot = process.getuid?.() === 0;
let dir: string;
let mounted = false;

beforeAll(() => {
  if (!isRoot) return;
  dir = mkdtempSync(join(tmpdir(), "exoclaw-store-diskfull-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", dir]);
  mounted = true;
});

afterAll(() => {
  // Lazy: the native engine keeps the datastore open until this worker exits.
  if (mounted) execFileSync("umount", ["-l", dir]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const key = (peer: string) => formatSessionKey({ agent: "main", channel: "ws", account: "default", peer });
/**
 * Padding for writes made while the disk is full: larger than a page (4 KiB), so no write fits in
 * the slack of a page the engine's files already hold (tmpfs counts whole pages: a small record
 * can still land in the write-ahead log's last page after the filler took every free page).
 */
const PAST_PAGE_SLACK = " " + "x".repeat(8192);
const message = (content: string) => [{ kind: "message_received" as const, data: { channel: "ws", account: "default", peer: "p", content } }];

describe.skipIf(!isRoot)("SurrealDB surrealkv on a full disk (needs root to mount a tmpfs; skipped when not root)", () => {
  it("names the full disk, settles every queued append, then fails writes at once and reports itself broken", async () => {
    const unhealthy: StoreHealth[] = [];
    const log: SessionLog = await createSurrealSessionLog({
      url: `surrealkv://${join(dir, "data")}`,
      queryTimeoutMs: 20_000,
      onUnhealthy: (h) => unhealthy.push(h),
    });
    expect(log.health?.()).toEqual({ ok: true });
    await log.append(key("a"), message("before the disk filled up"));

    try {
      execFileSync("dd", ["if=/dev/zero", `of=${join(dir, "filler")}`, "bs=64k"], { stdio: "ignore" });
    } catch {
      // dd stops with "No space left on device": the disk is full, as wanted.
    }
    // Ten sessions at once: one group-commit transaction, then the queue behind it.
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append(key(`s${i}`), message(`while full ${i}${PAST_PAGE_SLACK}`))));
    const errors = results.map((r) => (r.status === "rejected" ? (r.reason as StoreError) : undefined));
    expect(errors.every((e) => e instanceof StoreError)).toBe(true);
    expect(errors.some((e) => e!.code === "disk_full")).toBe(true);
    for (const e of errors) expect(e!.publicFailure?.reason).toMatch(/^(disk_full|store_unavailable)$/);
    const diskFull = errors.find((e) => e!.code === "disk_full")!;
    expect(diskFull.message).toMatch(/the disk is full/);
    // What a JSON-RPC client gets: the cause, without paths.
    expect(toErrorObject(diskFull)).toEqual({ code: -32603, message: "session store: the disk is full; nothing was written", data: { reason: "disk_full" } });

    expect(log.health?.()).toMatchObject({ ok: false, reason: "disk_full" });
    expect(unhealthy).toHaveLength(1);

    // Space is back, but this engine takes no more writes: the next one fails at once, naming why.
    rmSync(join(dir, "filler"));
    const after = await log.append(key("a"), message("after space was freed")).catch((e: unknown) => e as StoreError);
    expect(after).toBeInstanceOf(StoreError);
    expect((after as StoreError).code).toBe("unavailable");
    expect((after as StoreError).message).toMatch(/writes stopped: a write failed because the disk is full.*restart/);
    expect(toErrorObject(after)).toMatchObject({ code: -32603, data: { reason: "store_unavailable" } });
    await expect(log.delete(key("a"))).rejects.toThrow(/writes stopped/);
    expect(unhealthy).toHaveLength(1);

    // Reads still answer, with what was written before.
    expect((await log.read(key("a"))).map((e) => (e.data as { content: string }).content)).toEqual(["before the disk filled up"]);
    await log.close();
  }, 60_000);

  it("with the write-ahead journal (the default): the failed append leaves no record behind, later writes fail at once, reads answer", async () => {
    const unhealthy: StoreHealth[] = [];
    const data = join(dir, "journaled");
    const log = await openSessionLog({ url: `surrealkv://${data}`, onUnhealthy: (h) => unhealthy.push(h) });
    await log.append(key("a"), message("before the disk filled up"));
    const jdir = join(data, JOURNAL_DIR);
    const journalBytes = () => readdirSync(jdir).reduce((n, f) => n + statSync(join(jdir, f)).size, 0);
    // Projected: nothing left for the engine to write while the disk is full.
    expect((await log.read(key("a"))).length).toBe(1);
    const before = journalBytes();
    try {
      execFileSync("dd", ["if=/dev/zero", `of=${join(dir, "filler")}`, "bs=64k"], { stdio: "ignore" });
    } catch {
      // full, as wanted
    }
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append(key(`s${i}`), message(`while full ${i}${PAST_PAGE_SLACK}`))));
    const errors = results.map((r) => (r.status === "rejected" ? (r.reason as StoreError) : undefined));
    expect(errors.every((e) => e instanceof StoreError)).toBe(true);
    const diskFull = errors.find((e) => e!.code === "disk_full")!;
    expect(toErrorObject(diskFull)).toEqual({ code: -32603, message: "session store: the disk is full; nothing was written", data: { reason: "disk_full" } });
    expect(log.health?.()).toMatchObject({ ok: false, reason: "disk_full" });
    expect(unhealthy).toHaveLength(1);
    // The failed group commit was cut back: no partial record can be replayed later.
    expect(journalBytes()).toBe(before);

    rmSync(join(dir, "filler"));
    const after = await log.append(key("a"), message("after space was freed")).catch((e: unknown) => e as StoreError);
    expect(after).toMatchObject({ code: "unavailable" });
    expect((after as StoreError).message).toMatch(/writes stopped: a write failed because the disk is full.*restart/);
    expect(toErrorObject(after)).toMatchObject({ code: -32603, data: { reason: "store_unavailable" } });
    expect((await log.read(key("a"))).map((e) => (e.data as { content: string }).content)).toEqual(["before the disk filled up"]);
    expect(await log.info(key("s0"))).toBeUndefined();
    await log.close();
  }, 60_000);
});
