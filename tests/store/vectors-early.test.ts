/**
 * The vector table of a journaled store whose engine has not opened yet (a new store is ready
 * with its journal: docs/architecture.md, "Start-up"). Its first statement waits for the session
 * log's schema set-up: before, it failed at once ("must be opened before its vector table") and
 * kept failing, or, when the engine was opening, wrote `memory_vector` before migration 6 defined
 * it, so the migration failed with "already exists" and the store did not open. Real embedded
 * rocksdb and surrealkv.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatSessionKey, openSessionLog, openVectorTable } from "../../host/src/store/index.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-vectors-early-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.each(["rocksdb", "surrealkv"] as const)("vectors before the engine opened (%s)", (engine) => {
  it("the first put waits for the engine's schema set-up, then lands; the store stays healthy", async () => {
    const url = `${engine}://${join(root, engine, "data")}`;
    let start!: () => void;
    const engineStart = new Promise<void>((resolve) => (start = resolve));
    const log = await openSessionLog({ url, engineStart });
    const vectors = (await openVectorTable({ url }))!;
    let settled = false;
    const put = vectors.put("openai/embed-test", [{ note: 1, sum: 7, vector: new Float32Array([1, 0, 0]) }]).finally(() => (settled = true));
    put.catch(() => {});
    await new Promise((r) => setTimeout(r, 150));
    expect(settled).toBe(false);
    start();
    await put;
    expect((await vectors.load("openai/embed-test")).map((r) => [r.note, r.sum, [...r.vector]])).toEqual([[1, 7, [1, 0, 0]]]);
    // The session log's own open (its migrations) went through: it serves reads and appends.
    const key = formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: "p1" });
    await log.append(key, [{ kind: "message_received", data: { content: "hi", channel: "ws", account: "default", peer: "p1" } }]);
    expect((await log.read(key)).map((e) => e.kind)).toEqual(["message_received"]);
    await vectors.close();
    await log.close();
  });
});
