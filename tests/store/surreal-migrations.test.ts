/**
 * The schema check at open (`surreal/index.ts` `migrate`): a store at the current schema is opened
 * with one read of `migration`, so what that read decides must hold — a missing version is
 * applied, a newer one refuses the open, a current store opens as it is.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createSurrealSessionLog, formatSessionKey, openSessionLog, StoreError } from "../../host/src/store/index.js";
import { MIGRATIONS } from "../../host/src/store/migrations/index.js";
import { acquireEmbedded, embeddedEngineFactory, loadSdk } from "../../host/src/store/surreal/engine.js";
import { PROJECT_SQL, projectionVars, type ProjectedAppend } from "../../host/src/store/surreal/statements.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-migrations-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const NEWEST = MIGRATIONS[MIGRATIONS.length - 1]!.version;

/**
 * The journal's projection statement as exoclaw wrote it before migration 8 (the dedupe keys only
 * as indexed columns of the event rows, no `dedupe` rows): today's without its last insert.
 */
const DEDUPE_INSERT = "INSERT INTO dedupe $dedupe RETURN NONE;\n";
expect(PROJECT_SQL).toContain(DEDUPE_INSERT);
const OLD_PROJECT_SQL = PROJECT_SQL.replace(DEDUPE_INSERT, "");

/** Runs `sql` on the datastore at `url` (open in this process: the logs share it). */
async function raw(url: string, sql: string, vars: Record<string, unknown> = {}): Promise<unknown[]> {
  const sdk = await loadSdk();
  const engineName = url.startsWith("surrealkv:") ? ("surrealkv" as const) : ("rocksdb" as const);
  const target = { engine: engineName, url, displayUrl: url, namespace: "exoclaw", database: "sessions" };
  const engine = embeddedEngineFactory(
    sdk,
    () => acquireEmbedded(target),
    (err) => {
      throw err;
    },
  );
  const db = new sdk.Surreal({ engines: { [engineName]: engine } });
  await db.connect(url, { namespace: target.namespace, database: target.database });
  try {
    const responses = await db.query(sql, vars).responses();
    const bad = responses.find((r) => !r.success && !/not executed due to a failed transaction/.test(r.error.message)) ?? responses.find((r) => !r.success);
    if (bad && !bad.success) throw bad.error;
    return responses.map((r) => (r.success ? r.result : undefined));
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

  // A store whose record of the newest migration (8, the dedupe table) is missing: the open applies
  // it again (it is idempotent; "a store written by the schema before migration 8" below has the real case).
  expect(MIGRATIONS[MIGRATIONS.length - 1]!.name).toBe("dedupe table");
  await raw(url, `DELETE type::record('migration', ${NEWEST});`);
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

/**
 * Writes a store as exoclaw did before migration `upTo + 1`: migrations 1..`upTo` applied the way
 * `migrate` applies them, then sessions written by the journal's projection statement (the
 * default durable path) as it was then.
 */
async function writeOldSchemaStore(url: string, keys: { a: string; b: string }, upTo = 6): Promise<void> {
  const old = MIGRATIONS.filter((m) => m.version <= upTo);
  await raw(
    url,
    `DEFINE TABLE IF NOT EXISTS migration SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON migration TYPE string;
DEFINE FIELD IF NOT EXISTS applied_at ON migration TYPE int;`,
  );
  for (const m of old) {
    await raw(url, `BEGIN TRANSACTION;\n${m.sql}\nCREATE type::record('migration', $version) CONTENT { name: $name, applied_at: 0 };\nCOMMIT TRANSACTION;`, {
      version: m.version,
      name: m.name,
    });
  }
  const at = 1_700_000_000_000;
  const items: ProjectedAppend[] = [
    {
      sessionKey: keys.a,
      expectedSeq: 0,
      createdAt: at,
      updatedAt: at,
      events: [
        {
          kind: "message_received",
          at,
          data: {
            content: "what is the weather in Lisbon",
            channel: "tg",
            account: "default",
            peer: "p1",
            platformMessageId: "pm-1",
            idempotencyKey: "idem-1",
          },
        },
        { kind: "turn_started", at, runId: "r1", data: { runId: "r1" } },
        { kind: "assistant_text", at, runId: "r1", data: { text: "sunny with a light breeze" } },
        { kind: "turn_ended", at, runId: "r1", data: { runId: "r1", stopReason: "end_turn" } },
      ],
    },
    {
      sessionKey: keys.b,
      expectedSeq: 0,
      createdAt: at,
      updatedAt: at,
      // An open turn and an owed reply.
      events: [
        {
          kind: "message_received",
          at,
          data: { content: "unanswered question", channel: "tg", account: "default", peer: "p2", idempotencyKey: "idem-2", awaitsReply: true },
        },
      ],
    },
  ];
  const { dedupe: _none, after: _after, ...oldVars } = projectionVars(items, () => undefined);
  await raw(url, OLD_PROJECT_SQL, oldVars);
  const [info] = (await raw(url, "INFO FOR TABLE event;")) as [{ fields: Record<string, string>; indexes: Record<string, string> }];
  if (upTo < 7) expect(Object.keys(info.fields)).toContain("kind"); // the old schema is in force
  expect(Object.keys(info.indexes).sort()).toEqual(["event_idem_key", "event_pm_key"]);
}

for (const engine of ["rocksdb", "surrealkv"] as const) {
  it(`opens a ${engine} store written by the schema before migration 7 (schemaless rows), with its data`, async () => {
    const url = `${engine}://${join(root, `old-${engine}`)}`;
    const keys = {
      a: formatSessionKey({ agent: "main", channel: "tg", account: "default", peer: "p1" }),
      b: formatSessionKey({ agent: "other", channel: "tg", account: "default", peer: "p2" }),
    };
    await writeOldSchemaStore(url, keys);
    expect(await versions(url)).toEqual([1, 2, 3, 4, 5, 6]);

    const log = await createSurrealSessionLog({ url });
    try {
      expect(await versions(url)).toEqual(MIGRATIONS.map((m) => m.version));
      const [event, session] = (await raw(url, "INFO FOR TABLE event; INFO FOR TABLE session;")) as { fields: object; indexes: object }[];
      expect(event!.fields).toEqual({});
      expect(Object.keys(event!.indexes)).toEqual([]); // migration 8
      expect(session!.fields).toEqual({});
      expect(Object.keys(session!.indexes)).toEqual(["session_open"]);

      // The rows written under the old schema read back whole.
      const history = await log.readHistory(keys.a);
      expect(history.map((e) => [e.seq, e.kind])).toEqual([
        [1, "message_received"],
        [2, "turn_started"],
        [3, "assistant_text"],
        [4, "turn_ended"],
      ]);
      expect(history[2]!.data).toEqual({ text: "sunny with a light breeze" });
      expect(history[1]!.runId).toBe("r1");
      expect(await log.info(keys.a)).toMatchObject({ lastSeq: 4, resetSeq: 0, agent: "main", peer: "p1", createdAt: 1_700_000_000_000 });
      expect((await log.findByIdempotencyKey("idem-1"))?.seq).toBe(1);
      expect((await log.findByPlatformMessageId("tg", "default", "pm-1"))?.seq).toBe(1);
      expect((await log.search("breeze")).map((h) => [h.event.sessionKey, h.event.seq])).toEqual([[keys.a, 3]]);
      expect((await log.listSessions({ agent: "other" })).sessions.map((s) => s.sessionKey)).toEqual([keys.b]);
      expect((await log.pendingTurns()).map((e) => e.sessionKey)).toEqual([keys.b]);
      expect((await log.pendingReplies()).map((e) => e.data.idempotencyKey)).toEqual(["idem-2"]);

      // Appends after the migration: seqs go on, the dedupe keys stay unique, the open turn closes.
      await log.append(keys.b, [
        { kind: "turn_started", runId: "r2", data: { runId: "r2" } },
        { kind: "turn_ended", runId: "r2", data: { runId: "r2", stopReason: "end_turn" } },
      ]);
      expect((await log.readHistory(keys.b)).map((e) => e.seq)).toEqual([1, 2, 3]);
      expect(await log.pendingTurns()).toEqual([]);
      const dup = await log
        .append(keys.a, [{ kind: "message_received", data: { content: "again", channel: "tg", account: "default", peer: "p1", idempotencyKey: "idem-1" } }])
        .then(
          () => undefined,
          (e: unknown) => e as Error,
        );
      expect(dup?.name).toBe("DuplicateEventError");
      expect((await log.info(keys.a))?.lastSeq).toBe(4);
    } finally {
      await log.close();
    }
  });
}

it("a stored row that is not an event fails its read as corrupt (the table has no schema since migration 7)", async () => {
  const url = `rocksdb://${join(root, "c")}`;
  const key = formatSessionKey({ agent: "main", channel: "ws", account: "default", peer: "p" });
  const log = await createSurrealSessionLog({ url });
  try {
    await log.append(key, [{ kind: "assistant_text", data: { text: "a" } }]);
    await raw(url, "UPDATE type::record('event', [$key, 1]) SET kind = 'bogus', sum = NONE;", { key });
    const err = await log.read(key).then(
      () => undefined,
      (e: unknown) => e as StoreError,
    );
    expect(err).toBeInstanceOf(StoreError);
    expect(err?.code).toBe("corrupt");
  } finally {
    await log.close();
  }
});

for (const engine of ["rocksdb", "surrealkv"] as const) {
  it(`a ${engine} store written before migration 8 keeps refusing its stored dedupe keys, with and without the journal`, async () => {
    const dir = join(root, `dedupe-${engine}`);
    const url = `${engine}://${dir}`;
    const keys = {
      a: formatSessionKey({ agent: "main", channel: "tg", account: "default", peer: "p1" }),
      b: formatSessionKey({ agent: "other", channel: "tg", account: "default", peer: "p2" }),
    };
    await writeOldSchemaStore(url, keys, 7);
    expect(await versions(url)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const again = (idem: string, pm?: string) => [
      {
        kind: "message_received" as const,
        data: { content: "again", channel: "tg", account: "default", peer: "p1", idempotencyKey: idem, ...(pm !== undefined ? { platformMessageId: pm } : {}) },
      },
    ];
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => undefined,
        (e: unknown) => e as Error & { field?: string },
      );

    // Without the journal (each append its own transaction): the dedupe rows copied by the migration refuse both keys.
    const direct = await createSurrealSessionLog({ url });
    try {
      expect(await versions(url)).toEqual(MIGRATIONS.map((m) => m.version));
      expect((await direct.findByIdempotencyKey("idem-1"))?.seq).toBe(1);
      expect((await direct.findByPlatformMessageId("tg", "default", "pm-1"))?.sessionKey).toBe(keys.a);
      const byIdem = await refusal(direct.append(keys.a, again("idem-1")));
      expect(byIdem?.name).toBe("DuplicateEventError");
      const byPm = await refusal(direct.append(keys.b, again("fresh-1", "pm-1")));
      expect(byPm?.name).toBe("DuplicateEventError");
      expect(byPm?.message).toContain("pm-1");
      expect((await direct.info(keys.a))?.lastSeq).toBe(4);
      expect((await direct.info(keys.b))?.lastSeq).toBe(1);
      // The rows the migration copied: one per key, pointing at its message.
      const [rows] = (await raw(url, "SELECT VALUE [record::id(id), session, seq] FROM dedupe;")) as [unknown[]];
      const plain = rows.map((r) => JSON.parse(JSON.stringify(r, (_k, v) => (typeof v === "bigint" ? Number(v) : v))) as unknown[]);
      expect(plain.sort((x, y) => JSON.stringify(x).localeCompare(JSON.stringify(y)))).toEqual([
        [["idem", "idem-1"], keys.a, 1],
        [["idem", "idem-2"], keys.b, 1],
        [["pm", JSON.stringify(["tg", "default", "pm-1"])], keys.a, 1],
      ]);
    } finally {
      await direct.close();
    }

    // Behind the journal (the default): its dedupe filter, filled from the store at open, knows the old keys.
    const journaled = await openSessionLog({ url });
    try {
      const byIdem = await refusal(journaled.append(keys.b, again("idem-2")));
      expect(byIdem?.name).toBe("DuplicateEventError");
      const byPm = await refusal(journaled.append(keys.b, again("fresh-2", "pm-1")));
      expect(byPm?.name).toBe("DuplicateEventError");
      // A deleted session's keys are free again (as when they were index entries of its rows); the other's are not.
      expect(await journaled.delete(keys.a)).toBe(true);
      await journaled.append(keys.b, again("idem-1", "pm-1"));
      expect((await journaled.findByIdempotencyKey("idem-1"))?.sessionKey).toBe(keys.b);
      expect((await refusal(journaled.append(keys.b, again("idem-2"))))?.name).toBe("DuplicateEventError");
    } finally {
      await journaled.close();
    }
  });
}

/** `count` sessions of one keyed message each (both keys: `bulk-pm-i`, `bulk-idem-i`), written as before migration 8. */
async function addKeyedSessions(url: string, count: number): Promise<string[]> {
  const at = 1_700_000_000_000;
  const keys = Array.from({ length: count }, (_, i) => formatSessionKey({ agent: "main", channel: "tg", account: "default", peer: `bulk-${i}` }));
  const items: ProjectedAppend[] = keys.map((sessionKey, i) => ({
    sessionKey,
    expectedSeq: 0,
    createdAt: at,
    updatedAt: at,
    events: [
      {
        kind: "message_received",
        at,
        data: { content: `m${i}`, channel: "tg", account: "default", peer: `bulk-${i}`, platformMessageId: `bulk-pm-${i}`, idempotencyKey: `bulk-idem-${i}` },
      },
      { kind: "assistant_text", at, data: { text: `answer ${i}` } },
    ],
  }));
  const { dedupe: _none, after: _after, ...oldVars } = projectionVars(items, () => undefined);
  await raw(url, OLD_PROJECT_SQL, oldVars);
  return keys;
}

const dedupeCount = async (url: string) => Number((await raw(url, "RETURN array::len(SELECT VALUE id FROM dedupe);"))[0]);

it("migration 8 copies the keys of a store larger than one page, page by page, and resumes after a stop midway", async () => {
  const url = `rocksdb://${join(root, "paged")}`;
  await writeOldSchemaStore(
    url,
    {
      a: formatSessionKey({ agent: "main", channel: "tg", account: "default", peer: "p1" }),
      b: formatSessionKey({ agent: "other", channel: "tg", account: "default", peer: "p2" }),
    },
    7,
  );
  const bulk = await addKeyedSessions(url, 20);
  // 22 keyed messages (the two sessions above: 1 and 1; 20 here), 43 keys.
  const KEYS = 3 + 2 * bulk.length;

  // A process that stops after two pages of 4 event rows (a crash, the open's time limit): the version
  // is not recorded, the indexes are still there, the cursor says where to go on.
  const { copyDedupeKeys } = await import("../../host/src/store/migrations/0008-dedupe-table.js");
  let pages = 0;
  const stop = new Error("stopped");
  await expect(
    copyDedupeKeys({
      query: (sql, vars) => raw(url, sql, vars),
      batchRows: 4,
      progress: () => {
        if (++pages === 2) throw stop;
      },
    }),
  ).rejects.toBe(stop);
  expect(await versions(url)).toEqual([1, 2, 3, 4, 5, 6, 7]);
  expect(await dedupeCount(url)).toBeGreaterThanOrEqual(8);
  expect(await dedupeCount(url)).toBeLessThan(KEYS);
  expect(((await raw(url, "RETURN migration_progress:8.after;")) as unknown[])[0]).toBeDefined();

  // The next open goes on in pages of 3 event rows (45 in the store) and copies them all.
  const log = await createSurrealSessionLog({ url, migrationBatchRows: 3 });
  try {
    expect(await versions(url)).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await dedupeCount(url)).toBe(KEYS);
    const [db] = (await raw(url, "INFO FOR DB;")) as [{ tables: Record<string, unknown> }];
    expect(Object.keys(db.tables)).not.toContain("migration_progress"); // the cursor is gone with the migration
    for (const [i, key] of bulk.entries()) {
      expect((await log.findByIdempotencyKey(`bulk-idem-${i}`))?.sessionKey).toBe(key);
      expect((await log.findByPlatformMessageId("tg", "default", `bulk-pm-${i}`))?.sessionKey).toBe(key);
    }
    const dup = await log
      .append(bulk[0]!, [
        { kind: "message_received", data: { content: "again", channel: "tg", account: "default", peer: "bulk-0", idempotencyKey: "bulk-idem-19" } },
      ])
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(dup?.name).toBe("DuplicateEventError");
  } finally {
    await log.close();
  }
});
