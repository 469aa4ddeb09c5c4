/** The shared SessionLog suite on embedded SurrealDB with the RocksDB engine (`rocksdb://`, without the journal; journal.test.ts runs it behind the journal). */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { createSurrealSessionLog } from "../../host/src/store/index.js";
import { sessionLogSuite } from "./session-log.suite.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-rocks-"));
let dirs = 0;
afterAll(() => rmSync(root, { recursive: true, force: true }));

sessionLogSuite("surreal rocksdb://", (options) => createSurrealSessionLog({ url: `rocksdb://${join(root, `db${++dirs}`)}`, ...options }));
