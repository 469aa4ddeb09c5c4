/**
 * The journal's projection computes each session row in the host from the row it last wrote
 * (statements.ts `projectionVars`, kept across batches by the SurrealDB log): the rows must be
 * exactly those the engine computed before (open-turn floor and delta, a reset clearing the
 * compaction mark, the compaction mark, `created_at` kept), whatever the batches, and after a
 * reopen that forgets what was kept. Random event sequences over many sessions are projected
 * three ways, and compared:
 * - the projection before (tests/store/fixtures/projection-before.ts): raw rows, byte for byte;
 * - the store without the journal (`?journal=off`, the engine-side arithmetic of `APPEND_BODY`):
 *   `info`, `listSessions`, `pendingTurns`, `pendingReplies`, `readHistory`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createSurrealSessionLog, formatSessionKey, type NewSessionEvent, type SessionLog } from "../../host/src/store/index.js";
import type { PreparedEvent } from "../../host/src/store/events.js";
import type { ProjectedAppend } from "../../host/src/store/surreal/statements.js";
import { acquireEmbedded, embeddedEngineFactory, loadSdk } from "../../host/src/store/surreal/engine.js";
import { PROJECT_SQL_BEFORE, projectionVarsBefore } from "./fixtures/projection-before.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-projection-rows-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs `sql` on the embedded datastore at `url` (open in this process: the logs share it). */
async function raw(url: string, sql: string, vars: Record<string, unknown> = {}): Promise<unknown[]> {
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
    return await db.query(sql, vars).collect();
  } finally {
    await db.close();
  }
}

/** The stored rows of a table as JSON, integers and floats told apart (a byte-level difference). */
async function rowsOf(url: string, table: string): Promise<string> {
  const [rows] = (await raw(url, `SELECT * FROM ${table} ORDER BY id;`)) as [unknown[]];
  return JSON.stringify(rows, (_k, v: unknown) =>
    typeof v === "bigint" ? `${v}n` : typeof v === "number" && !Number.isInteger(v) ? `${v}f` : v?.constructor?.name === "RecordId" ? String(v) : v,
  );
}

/** Mulberry32: the same sequence for a seed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SESSIONS = 14;
const keys = Array.from({ length: SESSIONS }, (_, i) =>
  formatSessionKey({ agent: i % 3 === 0 ? "other" : "main", channel: "tg", account: "default", peer: `p${i}` }),
);

/**
 * `batches` random batches: each a subset of the sessions with 1..6 events each (messages, some
 * owing a reply, turns started and ended, errors, resets, compactions of an earlier range,
 * assistant text), timed `at`; the items follow each session's last seq.
 */
function batchesOf(seed: number, batches: number): ProjectedAppend[][] {
  const rnd = random(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const last = new Map<string, number>();
  let n = 0;
  const out: ProjectedAppend[][] = [];
  for (let b = 0; b < batches; b++) {
    const at = 1_780_000_000_000 + b * 1_000;
    const items: ProjectedAppend[] = [];
    for (const key of keys) {
      if (rnd() < 0.4) continue;
      const expectedSeq = last.get(key) ?? 0;
      const events: PreparedEvent[] = [];
      const count = 1 + Math.floor(rnd() * 6);
      for (let i = 0; i < count; i++) {
        const seq = expectedSeq + 1 + i;
        const run = `r${++n}`;
        const kind = pick([
          "message_received",
          "message_received",
          "turn_started",
          "turn_ended",
          "turn_ended",
          "error",
          "assistant_text",
          "reset",
          "compaction",
        ] as const);
        const e: NewSessionEvent =
          kind === "message_received"
            ? {
                kind,
                data: {
                  content: `m${n}`,
                  channel: "tg",
                  account: "default",
                  peer: "p",
                  ...(rnd() < 0.3 ? { idempotencyKey: `k${n}`, awaitsReply: true as const } : {}),
                },
              }
            : kind === "turn_started"
              ? { kind, runId: run, data: { runId: run } }
              : kind === "turn_ended"
                ? { kind, runId: run, data: { runId: run, stopReason: "end_turn" } }
                : kind === "error"
                  ? { kind, data: { code: -32000, message: "x" } }
                  : kind === "assistant_text"
                    ? { kind, runId: run, data: { text: `t${n}` } }
                    : kind === "reset"
                      ? { kind, data: {} }
                      : { kind, data: { summary: `s${n}`, upToSeq: Math.floor(rnd() * seq) } };
        events.push({ ...e, at } as PreparedEvent);
      }
      last.set(key, expectedSeq + count);
      // A new session's single event is both its first and its last append.
      items.push({ sessionKey: key, events, expectedSeq, createdAt: at, updatedAt: expectedSeq === 0 && count === 1 ? at : at + 7 });
    }
    if (items.length > 0) out.push(items);
  }
  return out;
}

for (const seed of [1, 2, 3]) {
  it(`writes the session rows the engine computed before, and what the store without the journal answers (seed ${seed}, a reopen between batches)`, async () => {
    const batches = batchesOf(seed, 24);
    const beforeUrl = `rocksdb://${join(root, `before-${seed}`)}`;
    const nowUrl = `rocksdb://${join(root, `now-${seed}`)}`;
    const before = await createSurrealSessionLog({ url: beforeUrl });
    let now = await createSurrealSessionLog({ url: nowUrl });
    let clock = 0;
    // The engine alone, as `?journal=off` opens it: its appends compute the rows in the engine (APPEND_BODY).
    const plain = await createSurrealSessionLog({ url: `rocksdb://${join(root, `plain-${seed}`)}`, now: () => clock });
    const logs: SessionLog[] = [before, plain];
    try {
      for (const [b, items] of batches.entries()) {
        // Reopen twice: what the log kept of each row is gone, and read back.
        if (b === 8 || b === 16) {
          await now.close();
          now = await createSurrealSessionLog({ url: nowUrl });
        }
        await raw(beforeUrl, PROJECT_SQL_BEFORE, projectionVarsBefore(items));
        await now.projectAppends(items);
        for (const item of items) {
          // The plain log times a session's creation and each update by its clock: a new session's
          // first event is appended at the item's createdAt, the rest at its updatedAt.
          const events = item.events as NewSessionEvent[];
          const split = item.expectedSeq === 0 ? 1 : 0;
          clock = item.createdAt;
          if (split > 0) await plain.append(item.sessionKey, events.slice(0, split));
          clock = item.updatedAt;
          if (events.length > split) await plain.append(item.sessionKey, events.slice(split));
        }
      }
      for (const table of ["session", "event", "outbox", "dedupe"]) expect(await rowsOf(nowUrl, table), table).toBe(await rowsOf(beforeUrl, table));
      for (const key of keys) {
        const info = await now.info(key);
        expect(info, key).toEqual(await before.info(key));
        expect(info, key).toEqual(await plain.info(key));
        expect(await now.readHistory(key)).toEqual(await plain.readHistory(key));
      }
      expect(await now.listSessions({ limit: 100 })).toEqual(await plain.listSessions({ limit: 100 }));
      expect(await now.pendingTurns()).toEqual(await plain.pendingTurns());
      expect(await now.pendingReplies()).toEqual(await plain.pendingReplies());
      // The random sequences reach the rules the rows keep (else the comparison proves little).
      const infos = await Promise.all(keys.map((k) => now.info(k)));
      expect(infos.some((i) => i!.resetSeq > 0)).toBe(true);
      expect(infos.some((i) => i!.compaction !== undefined)).toBe(true);
      expect((await now.pendingTurns()).length).toBeGreaterThan(0);
    } finally {
      for (const log of [...logs, now]) await log.close();
    }
  });
}

it("refuses a whole batch when a session's stored row moved under the row the log kept (changed or removed behind its back)", async () => {
  const url = `rocksdb://${join(root, "moved")}`;
  const log = await createSurrealSessionLog({ url });
  try {
    const at = 1_780_000_000_000;
    const text = (t: string): PreparedEvent => ({ kind: "assistant_text", data: { text: t }, at });
    const [a, b, c] = keys;
    await log.projectAppends([
      { sessionKey: a!, events: [text("a1")], expectedSeq: 0, createdAt: at, updatedAt: at },
      { sessionKey: b!, events: [text("b1")], expectedSeq: 0, createdAt: at, updatedAt: at },
    ]);
    // Written by something else: the log still keeps a at seq 1, the engine has it at 3.
    await raw(url, "UPDATE type::record('session', $k) SET last_seq = 3;", { k: a });
    await expect(
      log.projectAppends([
        { sessionKey: c!, events: [text("c1")], expectedSeq: 0, createdAt: at, updatedAt: at },
        { sessionKey: a!, events: [text("a2")], expectedSeq: 1, createdAt: at, updatedAt: at },
      ]),
    ).rejects.toThrow(/exoclaw:conflict:3/);
    expect(await log.info(c!)).toBeUndefined();
    expect((await log.read(a!)).map((e) => e.seq)).toEqual([1]);
    // Removed behind its back: its stored last seq is 0, not the kept 1.
    await raw(url, "DELETE type::record('session', $k);", { k: b });
    await expect(log.projectAppends([{ sessionKey: b!, events: [text("b2")], expectedSeq: 1, createdAt: at, updatedAt: at }])).rejects.toThrow(
      /exoclaw:conflict:0/,
    );
    expect(await log.info(b!)).toBeUndefined();
    // A failed batch forgets its sessions' kept rows: a is read back (at 3) and projected after it.
    await log.projectAppends([{ sessionKey: a!, events: [text("a4")], expectedSeq: 3, createdAt: at, updatedAt: at + 1 }]);
    expect(await log.info(a!)).toMatchObject({ lastSeq: 4, updatedAt: at + 1 });
  } finally {
    await log.close();
  }
});
