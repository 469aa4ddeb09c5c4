/**
 * The SurrealQL statements of the SurrealDB session log and the row shapes they read and write:
 * an append (one session, or a group of sessions in one transaction), the write-ahead
 * journal's projection of a batch (one fixed statement), and the reads. Pure: no connection here
 * (index.ts runs them).
 */
import { crc32 } from "node:zlib";
import type * as Sdk from "surrealdb";
import { joinText, openTurnsEffect, platformKey, splitText, type PreparedEvent } from "../events.js";
import { StoreError } from "../errors.js";
import { parseSessionKey } from "../session-key.js";
import { EVENT_KINDS, type EventKind, type SessionEvent, type SessionInfo } from "../types.js";

/**
 * One append the write-ahead journal (`store/journal/`) projects: events already validated,
 * redacted and timed when they were journaled, and the seq they must follow.
 */
export interface ProjectedAppend {
  sessionKey: string;
  events: readonly PreparedEvent[];
  /** The session's last seq before these events (the append fails with SeqConflictError otherwise). */
  expectedSeq: number;
  /** When the first and the last journaled append of these events happened, ms epoch (the session row's times). */
  createdAt: number;
  updatedAt: number;
}

export interface EventRow {
  id: Sdk.RecordId;
  kind: EventKind;
  at: number | bigint;
  run_id?: string;
  data: string;
  text?: string;
  /** {@link eventChecksum} of the row (absent on events written before migration 2). */
  sum?: number | bigint;
}

export interface SessionRow {
  id: Sdk.RecordId;
  agent: string;
  channel: string;
  account: string;
  peer: string;
  last_seq: number | bigint;
  reset_seq: number | bigint;
  compaction_seq?: number | bigint;
  compaction_up_to?: number | bigint;
  open_turns: number | bigint;
  created_at: number | bigint;
  updated_at: number | bigint;
}

/**
 * CRC-32 of what an event row stores (kind, data JSON, free text), kept in its `sum` column and
 * verified on every read: the embedded engine returns damaged value-log bytes without an error
 * (see migrations/0002-event-checksum.ts).
 */
function eventChecksum(kind: string, data: string, text: string | undefined): number {
  return crc32(`${kind}\n${data}\n${text ?? ""}`);
}

const KNOWN_KINDS: ReadonlySet<string> = new Set(EVENT_KINDS);

/**
 * The event a stored row holds.
 * @throws StoreError `corrupt` when the row's checksum does not match, or (the table has no schema
 *   since migration 7) its kind is not an event kind or its data is not a string
 */
export function toEvent(row: EventRow): SessionEvent {
  const [sessionKey, seq] = row.id.id as [string, number | bigint];
  // What migration 1's field types asserted on write, checked on read instead (cheaper: once per read row).
  if (!KNOWN_KINDS.has(row.kind) || typeof row.data !== "string") {
    throw new StoreError("corrupt", `session ${sessionKey}, event ${Number(seq)}: the stored row is not an event (kind ${JSON.stringify(row.kind)})`);
  }
  if (row.sum !== undefined && row.sum !== null && Number(row.sum) !== eventChecksum(row.kind, row.data, row.text ?? undefined)) {
    throw new StoreError(
      "corrupt",
      `session ${sessionKey}, event ${Number(seq)}: the stored bytes do not match their checksum (the store's files are damaged; see docs/reliability.md, "Corrupted store")`,
    );
  }
  const e: Record<string, unknown> = {
    sessionKey,
    seq: Number(seq),
    kind: row.kind,
    data: joinText(row.kind, JSON.parse(row.data) as Record<string, unknown>, row.text),
    at: Number(row.at),
  };
  if (row.run_id !== undefined && row.run_id !== null) e.runId = row.run_id;
  return e as SessionEvent;
}

export function toInfo(row: SessionRow): SessionInfo {
  const info: SessionInfo = {
    sessionKey: String(row.id.id),
    agent: row.agent,
    channel: row.channel,
    account: row.account,
    peer: row.peer,
    lastSeq: Number(row.last_seq),
    resetSeq: Number(row.reset_seq),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
  if (row.compaction_seq !== undefined && row.compaction_seq !== null) {
    info.compaction = { seq: Number(row.compaction_seq), upToSeq: Number(row.compaction_up_to) };
  }
  return info;
}

/**
 * The statements of one append (inside a transaction): checks the replay guard, `expectedSeq`
 * and the compaction range, updates the session row, inserts the events and the `dedupe` rows of
 * their keys (`$dedupe`: `{ t: 'pm' | 'idem', k: key, i: index in the batch }`; a key already
 * taken fails the transaction with "Database record `dedupe:[…]` already exists", see
 * migrations/0008-dedupe-table.ts); leaves the previous last seq in `$last`.
 */
export const APPEND_BODY = `LET $s = SELECT * FROM ONLY type::record('session', $key);
IF $s != NONE AND $s.last_batch = $batch { THROW 'exoclaw:replay:' + <string> $s.last_batch_first; };
LET $last = $s.last_seq ?? 0;
IF $expected != NONE AND $expected != $last { THROW 'exoclaw:conflict:' + <string> $last; };
IF $last < $min_last { THROW 'exoclaw:compaction:' + <string> $last; };
UPSERT type::record('session', $key) CONTENT {
  agent: $parts.agent, channel: $parts.channel, account: $parts.account, peer: $parts.peer,
  last_seq: $last + array::len($events),
  reset_seq: IF $reset_i != NONE { $last + 1 + $reset_i } ELSE { $s.reset_seq ?? 0 },
  compaction_seq: IF $comp_i != NONE { $last + 1 + $comp_i } ELSE IF $reset_i != NONE { NONE } ELSE { $s.compaction_seq },
  compaction_up_to: IF $comp_i != NONE { $comp_up } ELSE IF $reset_i != NONE { NONE } ELSE { $s.compaction_up_to },
  open_turns: math::max([$open_floor, ($s.open_turns ?? 0) + $open_delta]),
  created_at: $s.created_at ?? $created ?? $now,
  updated_at: $now,
  last_batch: $batch,
  last_batch_first: $last + 1
} RETURN NONE;
INSERT INTO event array::map($events, |$e, $i| object::extend($e, { id: type::record('event', [$key, $last + 1 + $i]) })) RETURN NONE;
IF array::len($dedupe) > 0 { INSERT INTO dedupe array::map($dedupe, |$d| { id: type::record('dedupe', [$d.t, $d.k]), session: $key, seq: $last + 1 + $d.i }) RETURN NONE; };
IF array::len($owed) > 0 { INSERT INTO outbox array::map($owed, |$o| { id: type::record('outbox', $o.k), session: $key, seq: $last + 1 + $o.i }) RETURN NONE; };
`;

/**
 * The journal's projection of a batch (`store/journal/`): one transaction whatever the number of
 * sessions and events. `$sessions` holds every session row of the batch, whole, as the host
 * computed it ({@link projectionVars}: from the journaled events and the row as it was before);
 * one `INSERT … ON DUPLICATE KEY UPDATE` writes them all (a new session's row is inserted, an
 * existing one has its changing columns replaced; `agent`…`peer` and `created_at` stay). The
 * statement returns each row's last seq before it (0 for a row it created), which must equal
 * `$expected` (the seqs the journaled events follow, in the same order): otherwise the whole
 * batch fails with `exoclaw:conflict:<stored last seq>` and nothing is written. `$events` holds
 * every event row with its id (`[key, seq]`), inserted by one statement; `$owed` the outbox
 * rows; `$dedupe` the `dedupe` rows of the batch's keyed messages (migration 8). An event id or
 * a dedupe key already taken fails the batch too (a batch is never written twice; the journal
 * refuses a duplicate key before it journals the append).
 *
 * Inside `ON DUPLICATE KEY UPDATE` the engine (3.0.3) reads the stored row's fields as NONE
 * (tried: `field`, `$this.field`, `$before.field`, `$after.field`), so nothing in it may depend on
 * the old row: the host computes every value, and the check reads `$before` in `RETURN`, which
 * does see the stored row.
 *
 * Measured (rocksdb, 2-core VM, engine threads' CPU, bench/engine-rows.mjs): the earlier
 * per-session statement group cost ~1 ms per session; a `FOR` over the sessions reading each
 * row (`SELECT`), checking it and writing it (`UPSERT … CONTENT`) ~150 us per session; this one
 * statement over all the rows: see docs/architecture.md ("Store").
 */
export const PROJECT_SQL = `BEGIN TRANSACTION;
LET $before = INSERT INTO session $sessions ON DUPLICATE KEY UPDATE
  last_seq = $input.last_seq, reset_seq = $input.reset_seq, compaction_seq = $input.compaction_seq,
  compaction_up_to = $input.compaction_up_to, open_turns = $input.open_turns, updated_at = $input.updated_at,
  last_batch = NONE, last_batch_first = NONE
  RETURN VALUE $before.last_seq ?? 0;
IF $before != $expected {
  FOR $i IN 0..array::len($expected) { IF $before[$i] != $expected[$i] { THROW 'exoclaw:conflict:' + <string> $before[$i]; }; };
};
INSERT INTO event $events RETURN NONE;
INSERT INTO outbox $owed RETURN NONE;
INSERT INTO dedupe $dedupe RETURN NONE;
COMMIT TRANSACTION;`;

/**
 * What the projection keeps of a session's row after writing it (the columns the next batch's
 * row is computed from), so the row need not be read back: `lastSeq` is the seq it ends at;
 * the rest are the row's columns as stored (`created_at` is not needed: the update keeps it).
 */
export interface ProjectedSession {
  lastSeq: number;
  resetSeq: number;
  compactionSeq?: number;
  compactionUpTo?: number;
  openTurns: number;
}

/** The {@link ProjectedSession} of a stored session row. */
export function projectedSession(row: SessionRow): ProjectedSession {
  const s: ProjectedSession = {
    lastSeq: Number(row.last_seq),
    resetSeq: Number(row.reset_seq ?? 0),
    openTurns: Number(row.open_turns ?? 0),
  };
  if (row.compaction_seq !== undefined && row.compaction_seq !== null) {
    s.compactionSeq = Number(row.compaction_seq);
    s.compactionUpTo = Number(row.compaction_up_to);
  }
  return s;
}

/**
 * An event's row (without its id): `data` is the JSON of the event's data without its free-text
 * field, which goes to `text`; `sum` its checksum; a message's dedupe keys as plain columns
 * `pm_key` / `idem_key` (not indexed since migration 8: uniqueness is the `dedupe` table's; they
 * stay on the row so deleting or pruning a session finds the `dedupe` rows to remove).
 */
export function eventRow(e: PreparedEvent): Record<string, unknown> {
  const { text, rest } = splitText(e);
  const data = JSON.stringify(rest);
  const row: Record<string, unknown> = { kind: e.kind, at: e.at, data };
  if (e.runId !== undefined) row.run_id = e.runId;
  if (text !== undefined) row.text = text;
  row.sum = eventChecksum(e.kind, data, text);
  if (e.kind === "message_received") {
    if (e.data.platformMessageId !== undefined) row.pm_key = platformKey(e.data.channel, e.data.account, e.data.platformMessageId);
    if (e.data.idempotencyKey !== undefined) row.idem_key = e.data.idempotencyKey;
  }
  return row;
}

/**
 * The parameters of {@link PROJECT_SQL} for a batch (pure), and each session as it stands once
 * they are written. The events were validated when they were journaled; only what the rows need
 * is derived here (seqs, reset and compaction marks, the open-turn count, owed replies).
 *
 * Each session row is the one the engine-side arithmetic of the per-session `APPEND_BODY`
 * computes: `last_seq` = expected + events; `reset_seq` = the last reset's seq, else kept; the
 * compaction mark = the last compaction after that reset, else none if there was a reset, else
 * kept; `open_turns` = max(floor, old + delta) ({@link openTurnsEffect}); `created_at` kept
 * (PROJECT_SQL's update leaves it; a new session's is the item's `createdAt`).
 * @param before each session's {@link ProjectedSession} as stored, undefined when
 *   `expectedSeq` is 0 (a session whose last seq is 0 has no row: its previous state is empty)
 * @throws Error when `before` lacks a session whose `expectedSeq` is not 0, or gives another last seq
 */
export function projectionVars(
  items: readonly ProjectedAppend[],
  before: (sessionKey: string) => ProjectedSession | undefined,
): {
  sessions: Record<string, unknown>[];
  expected: number[];
  events: Record<string, unknown>[];
  owed: Record<string, unknown>[];
  dedupe: Record<string, unknown>[];
  after: Map<string, ProjectedSession>;
} {
  const sessions: Record<string, unknown>[] = [];
  const expected: number[] = [];
  const events: Record<string, unknown>[] = [];
  const owed: Record<string, unknown>[] = [];
  const dedupe: Record<string, unknown>[] = [];
  const after = new Map<string, ProjectedSession>();
  for (const item of items) {
    const key = item.sessionKey;
    const first = item.expectedSeq + 1;
    const old = item.expectedSeq === 0 ? undefined : before(key);
    if (item.expectedSeq !== 0 && old?.lastSeq !== item.expectedSeq) {
      throw new Error(`projection of session ${key}: its previous row (last seq ${old?.lastSeq}) is not the one at seq ${item.expectedSeq}`);
    }
    let resetAt = -1;
    let compactionAt = -1;
    let compactionUpTo = 0;
    item.events.forEach((e, i) => {
      const row = eventRow(e);
      row.id = [key, first + i];
      events.push(row);
      if (row.pm_key !== undefined) dedupe.push({ id: ["pm", row.pm_key], session: key, seq: first + i });
      if (row.idem_key !== undefined) dedupe.push({ id: ["idem", row.idem_key], session: key, seq: first + i });
      if (e.kind === "reset") {
        resetAt = i;
        compactionAt = -1;
      } else if (e.kind === "compaction") {
        compactionAt = i;
        compactionUpTo = e.data.upToSeq;
      } else if (e.kind === "message_received" && e.data.awaitsReply === true) {
        owed.push({ id: e.data.idempotencyKey!, session: key, seq: first + i });
      }
    });
    const { floor, delta } = openTurnsEffect(item.events);
    const state: ProjectedSession = {
      lastSeq: item.expectedSeq + item.events.length,
      resetSeq: resetAt >= 0 ? first + resetAt : (old?.resetSeq ?? 0),
      openTurns: Math.max(floor, (old?.openTurns ?? 0) + delta),
    };
    if (compactionAt >= 0) {
      state.compactionSeq = first + compactionAt;
      state.compactionUpTo = compactionUpTo;
    } else if (resetAt < 0 && old?.compactionSeq !== undefined) {
      state.compactionSeq = old.compactionSeq;
      state.compactionUpTo = old.compactionUpTo;
    }
    const parts = parseSessionKey(key);
    const row: Record<string, unknown> = {
      id: key,
      agent: parts.agent,
      channel: parts.channel,
      account: parts.account,
      peer: parts.peer,
      last_seq: state.lastSeq,
      reset_seq: state.resetSeq,
      open_turns: state.openTurns,
      // Written only with a new row: the update leaves an existing row's `created_at` as it is.
      created_at: item.createdAt,
      updated_at: item.updatedAt,
    };
    if (state.compactionSeq !== undefined) {
      row.compaction_seq = state.compactionSeq;
      row.compaction_up_to = state.compactionUpTo;
    }
    sessions.push(row);
    expected.push(item.expectedSeq);
    after.set(key, state);
  }
  return { sessions, expected, events, owed, dedupe, after };
}

/** The parameters of {@link APPEND_BODY}. */
const APPEND_VARS = [
  "key",
  "parts",
  "events",
  "batch",
  "expected",
  "min_last",
  "now",
  "reset_i",
  "comp_i",
  "comp_up",
  "open_floor",
  "open_delta",
  "owed",
  "created",
  "dedupe",
];

/** Appends to at most this many sessions go into one transaction (group commit). */
export const MAX_GROUP = 64;

const groupSqlCache = new Map<number, string>();

/**
 * One transaction appending to `n` different sessions: item `i` reads its parameters from
 * `$b<i>` and leaves its previous last seq in `$last_<i>`; the result is the array of those.
 */
export function groupAppendSql(n: number): string {
  let sql = groupSqlCache.get(n);
  if (sql) return sql;
  const vars = new RegExp(`\\$(${APPEND_VARS.join("|")})\\b`, "g");
  const items = Array.from({ length: n }, (_, i) => APPEND_BODY.replace(/\$(s|last)\b/g, `$$$1_${i}`).replace(vars, `$b${i}.$1`));
  sql = `BEGIN TRANSACTION;\n${items.join("")}RETURN [${items.map((_, i) => `$last_${i}`).join(", ")}];\nCOMMIT TRANSACTION;`;
  groupSqlCache.set(n, sql);
  return sql;
}

/**
 * Deletes the `dedupe` rows of session `$key`'s events 1..`hi` (before its events go, inside the
 * delete's or prune's transaction): the keys are on the messages' rows, so this reads the
 * session's own range, not the whole `dedupe` table; a row is removed only if it points at this
 * session.
 */
const DELETE_DEDUPE = (hi: string) =>
  `DELETE array::filter(array::flatten(SELECT VALUE [IF pm_key != NONE { type::record('dedupe', ['pm', pm_key]) }, IF idem_key != NONE { type::record('dedupe', ['idem', idem_key]) }] FROM event:[$key, 1]..=[$key, ${hi}] WHERE pm_key != NONE OR idem_key != NONE), |$v| $v != NONE) WHERE session = $key;`;

export const SQL = {
  append: `
BEGIN TRANSACTION;
${APPEND_BODY}RETURN $last;
COMMIT TRANSACTION;`,
  read: `SELECT * FROM event:[$key, $lo]..=[$key, $hi];`,
  info: `SELECT * FROM ONLY type::record('session', $key);`,
  /** The rows of the sessions `$keys` that exist (any order). */
  sessionRows: `SELECT * FROM array::map($keys, |$k| type::record('session', $k));`,
  history: `
LET $s = SELECT * FROM ONLY type::record('session', $key);
LET $lo = IF $s = NONE { 1 } ELSE { math::max([$s.reset_seq, IF $s.compaction_seq != NONE { math::min([$s.compaction_up_to, $s.compaction_seq - 1]) } ELSE { 0 }]) + 1 };
LET $hi = $s.last_seq ?? 0;
SELECT * FROM event:[$key, $lo]..=[$key, $hi];`,
  list: `
SELECT * FROM session
WHERE ($agent = NONE OR agent = $agent) AND ($channel = NONE OR channel = $channel) AND ($peer = NONE OR peer = $peer)
  AND ($after = NONE OR id > type::record('session', $after))
ORDER BY id LIMIT $limit;`,
  delete: `
BEGIN TRANSACTION;
LET $s = SELECT * FROM ONLY type::record('session', $key);
LET $hi = $s.last_seq ?? 0;
IF $s != NONE { ${DELETE_DEDUPE("$hi")} DELETE event:[$key, 1]..=[$key, $hi]; DELETE type::record('session', $key); DELETE outbox WHERE session = $key; };
RETURN $s != NONE;
COMMIT TRANSACTION;`,
  /** The message whose platform message key (see `platformKey`) is `$k`: zero or one event row. */
  byPm: `SELECT * FROM (SELECT VALUE type::record('event', [session, seq]) FROM type::record('dedupe', ['pm', $k]));`,
  /** The message whose idempotency key is `$k`: zero or one event row. */
  byIdem: `SELECT * FROM (SELECT VALUE type::record('event', [session, seq]) FROM type::record('dedupe', ['idem', $k]));`,
  open: `SELECT * FROM session WHERE open_turns > 0 ORDER BY id;`,
  owed: `SELECT session, seq FROM outbox ORDER BY session, seq;`,
  settle: `FOR $k IN $keys { DELETE type::record('outbox', $k); };`,
  count: `SELECT count() AS n FROM session GROUP ALL;`,
  /** Retention candidates (no index on updated_at: it changes on every append; a scan is fine hourly). */
  idle: `SELECT id, last_seq, open_turns FROM session WHERE updated_at < $cutoff ORDER BY id;`,
  /**
   * Removes one idle session unless it was appended to since, or has an open turn or an owed
   * reply: 'fresh' | 'kept' | its event count.
   */
  prune: `
BEGIN TRANSACTION;
LET $s = SELECT * FROM ONLY type::record('session', $key);
LET $owes = array::len(SELECT id FROM outbox WHERE session = $key LIMIT 1);
LET $out = IF $s = NONE OR $s.updated_at >= $cutoff { 'fresh' } ELSE IF $s.open_turns > 0 OR $owes > 0 { 'kept' } ELSE { $s.last_seq };
IF type::is_int($out) { ${DELETE_DEDUPE("$s.last_seq")} DELETE event:[$key, 1]..=[$key, $s.last_seq]; DELETE type::record('session', $key); };
RETURN $out;
COMMIT TRANSACTION;`,
  /** Every stored dedupe key, as `[kind, key]` (kind `pm` or `idem`). */
  dedupeKeys: `SELECT VALUE record::id(id) FROM dedupe;`,
  /** Every stored session's id (for the journal's filter of sessions that exist). */
  sessionIds: `SELECT VALUE id FROM session;`,
};
