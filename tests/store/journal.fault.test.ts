/**
 * The journal's kill -9 test, longer: eight rounds of 50 sessions appending, killed after
 * 1,500 acknowledged appends each; after every restart all acknowledged appends are there,
 * none twice, and the store opens cleanly; on both embedded engines (rocksdb, the default for new
 * stores, and surrealkv). The short version is in journal.test.ts.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildJournalChild, crashRounds } from "./journal-crash.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-journal-fault-"));
let child: string;
let cleanup = () => {};
beforeAll(async () => {
  ({ child, cleanup } = await buildJournalChild());
});
afterAll(() => {
  cleanup();
  rmSync(root, { recursive: true, force: true });
});

describe.each(["rocksdb", "surrealkv"])("journal on %s: repeated kill -9 under load", (engine) => {
  it("keeps every acknowledged append through eight crashes", async () => {
    const acked = await crashRounds(child, `${engine}://${join(root, engine)}`, 8, 1500);
    expect(acked).toBeGreaterThanOrEqual(12_000);
  }, 600_000);
});
