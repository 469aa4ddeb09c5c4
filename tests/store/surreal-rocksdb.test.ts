/** The shared SessionLog suite on embedded SurrealDB with the RocksDB engine (`rocksdb://`, without the journal; journal.test.ts runs it behind the journal). */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createSurrealSessionLog, formatSessionKey } from "../../host/src/store/index.js";
import { sessionLogSuite } from "./session-log.suite.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-rocks-"));
let dirs = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

sessionLogSuite("surreal rocksdb://", (options) => createSurrealSessionLog({ url: `rocksdb://${join(root, `db${++dirs}`)}`, ...options }));

it("opens a RocksDB datastore (the suite above runs on this engine, not on surrealkv)", async () => {
  const dir = join(root, "engine-check");
  const log = await createSurrealSessionLog({ url: `rocksdb://${dir}` });
  try {
    const key = formatSessionKey({ agent: "main", channel: "telegram", account: "bot1", peer: "p" });
    expect(await log.append(key, [{ kind: "message_received", data: { content: "hi", channel: "telegram", account: "bot1", peer: "p" } }])).toEqual([1]);
    expect(readdirSync(dir)).toContain("CURRENT"); // RocksDB's manifest pointer, which SurrealKV never writes
  } finally {
    await log.close();
  }
});
