/**
 * The schema check at open (`surreal/index.ts` `migrate`): a store at the current schema is opened
 * with one read of `migration`, so what that read decides must hold — a missing version is
 * applied, a newer one refuses the open, a current store opens as it is.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createSurrealSessionLog, formatSessionKey, StoreError } from "../../host/src/store/index.js";
import { MIGRATIONS } from "../../host/src/store/migrations/index.js";
import { acquireEmbedded, embeddedEngineFactory, loadSdk } from "../../host/src/store/surreal/engine.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-migrations-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const NEWEST = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/** Runs `sql` on the datastore at `url` (open in this process: the logs share it). */
async function raw(url: string, sql: string): Promise<unknown[]> {
  const sdk = await loadSdk();
  const target = { engine: "rocksdb" as const, url, displayUrl: url, namespace: "exoclaw", database: "sessions" };
  const engine = embeddedEngineFactory(
    sdk,
    () => acquireEmbedded(target),
    (err) => {
      throw err;
    },
  );
  const db = new sdk.Surreal({ engines: { rocksdb: engine } });
  await db.connect(url, { namespace: target.namespace, database: target.database });
  try {
    return await db.query(sql).collect();
  } finally {
    await db.close();
  }
}

const versions = async (url: string) => ((await raw(url, "SELECT VALUE record::id(id) FROM migration;"))[0] as number[]).map(Number).sort((a, b) => a - b);

it("applies every migration to a new store, re-applies one a store lacks, and opens a current store as it is", async () => {
  const url = `rocksdb://${join(root, "a")}`;
  const key = formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: "p" });
  const first = await createSurrealSessionLog({ url });
  await first.append(key, [{ kind: "assistant_text", data: { text: "kept" } }]);
  await first.close();
  expect(await versions(url)).toEqual(MIGRATIONS.map((m) => m.version));

  // A store written before the newest migration (6, memory vectors): its table and its record are
  // missing, so the open applies it.
  expect(MIGRATIONS[MIGRATIONS.length - 1]!.name).toBe("memory vectors");
  await raw(url, `REMOVE TABLE memory_vector; DELETE type::record('migration', ${NEWEST});`);
  expect(await versions(url)).not.toContain(NEWEST);
  const second = await createSurrealSessionLog({ url });
  expect(await versions(url)).toEqual(MIGRATIONS.map((m) => m.version));
  expect((await second.read(key)).map((e) => e.seq)).toEqual([1]);
  await second.close();

  // Current: opens, the data is there, nothing is re-recorded.
  const before = await raw(url, "SELECT record::id(id) AS v, applied_at FROM migration ORDER BY v;");
  const third = await createSurrealSessionLog({ url });
  expect((await third.read(key)).map((e) => e.seq)).toEqual([1]);
  await third.close();
  expect(await raw(url, "SELECT record::id(id) AS v, applied_at FROM migration ORDER BY v;")).toEqual(before);
});

it("refuses a store with a schema version newer than this code", async () => {
  const url = `rocksdb://${join(root, "b")}`;
  await (await createSurrealSessionLog({ url })).close();
  await raw(url, `CREATE type::record('migration', ${NEWEST + 1}) CONTENT { name: "from the future", applied_at: 0 };`);
  const err = await createSurrealSessionLog({ url }).then(
    () => undefined,
    (e: unknown) => e as StoreError,
  );
  expect(err).toBeInstanceOf(StoreError);
  expect(err?.code).toBe("schema");
  expect(err?.message).toContain(`schema version ${NEWEST + 1}, newer than this exoclaw knows (${NEWEST})`);
});
