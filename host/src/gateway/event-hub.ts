/**
 * Server-push subscriptions (docs/protocol.md, "`events.subscribe`"): `events.subscribe` /
 * `events.unsubscribe`, and the `event` notifications `{topic, data}` pushed on the same
 * WebSocket in the subscribing request's encoding (MessagePack for a binary request).
 *
 * Topics:
 * - `status`: the `status` result (+ `health` and `ready`), computed once per tick for every
 *   subscriber, pushed at most once per `statusIntervalMs` (1 s).
 * - `plugins`, `channels`, `deadletters`, `agents`: the result of `plugin.list`, `channels.list`,
 *   `deadletters.list`, `agents.list`, computed once per tick (1 s), pushed when it changed (for
 *   `agents`: after a config reload changed an agent or a binding).
 * - `sessions`: `{sessionKeys, sessions}` — sessions written since the last push (at most once a
 *   second) and their `sessions.list` rows (read once per tick for all subscribers; a key without
 *   a row was deleted); `{sessionKeys, all: true}` when too many changed (over 100, or a prune
 *   ran) to send rows for.
 * - `session:<key>`: the session's new events (`{sessionKey, events}`, after the `after` seq
 *   given, or after its last event at subscribe time), or `{sessionKey, deleted: true}`;
 *   pushed at most every `sessionFlushMs` (250 ms), at most 200 events per push.
 * - `logs`, `logs:<level>`: new log lines (`{lines, lastSeq}`, as `logs.tail` gives them), at
 *   most every `logsIntervalMs` (500 ms).
 *
 * Costs: nothing runs for a topic nobody subscribes to (its timer stops with the last
 * subscriber; session changes with no subscriber are dropped at once). Backpressure: a push is
 * skipped for a connection with more than `softBufferedBytes` queued — snapshot topics send their
 * latest state on a later tick, session and log cursors stay where they were (so nothing is
 * queued in memory per connection beyond its subscription list, at most `maxTopics` entries);
 * past the transport's hard limit the RPC layer closes the connection as a slow consumer.
 * Scopes: each topic is checked like the method it mirrors, once at subscribe time.
 */
import * as z from "zod";
import { LOG_LEVELS, processLogTail, type LogTail } from "../log/index.js";
import { ErrorCode, RpcError, parseParams } from "../protocol/index.js";
import { StoreError, parseSessionKey, type SessionInfo, type SessionLog } from "../store/index.js";
import { forbidden, ownsSession, requireScope, type ClientIdentity } from "./identity.js";
import type { MethodContext, MethodHandler } from "./rpc.js";
import type { SessionChange, SessionChanges } from "./session-changes.js";
import type { Connection } from "./types.js";

/** What the hub reads. */
export interface EventHubDeps {
  /** The method table: snapshot topics call `status`, `plugin.list`, `channels.list`, `deadletters.list`, `agents.list` from it. */
  methods: ReadonlyMap<string, MethodHandler>;
  log: Pick<SessionLog, "read" | "info">;
  /** Session writes (session-changes.ts); absent = `sessions` and `session:<key>` never push. */
  changes?: Pick<SessionChanges, "on">;
  /** Default: the process's ({@link processLogTail}). */
  logTail?: LogTail;
  /** Added to each `status` push: the `/health` and `/ready` answers. */
  readiness?: () => { health?: { status: number; body: string }; ready?: { status: number; body: string } };
  statusIntervalMs?: number;
  snapshotIntervalMs?: number;
  sessionFlushMs?: number;
  logsIntervalMs?: number;
  /** A connection with more than this many bytes queued gets no push this time; default 256 KiB. */
  softBufferedBytes?: number;
  /** Topics one connection may hold; default 32. */
  maxTopics?: number;
}

/** The notification's method name. */
export const EVENT_NOTIFICATION = "event";

const SNAPSHOT_METHODS: Record<string, string> = {
  status: "status",
  plugins: "plugin.list",
  channels: "channels.list",
  deadletters: "deadletters.list",
  agents: "agents.list",
};
const SESSION_PUSH_MAX = 200;
const SESSIONS_NAMED_MAX = 500;
/** More changed sessions than this in a tick: `all: true` (the list is read again) rather than a row each. */
const SESSIONS_ROWS_MAX = 100;

const TopicSchema = z.lazy(() =>
  z
    .string()
    .min(1)
    .max(600)
    .refine(
      (t) => t in SNAPSHOT_METHODS || t === "sessions" || t === "logs" || /^logs:(trace|debug|info|warn|error|fatal)$/.test(t) || t.startsWith("session:"),
      {
        message: "unknown topic (status, plugins, channels, deadletters, agents, sessions, session:<key>, logs, logs:<level>)",
      },
    ),
);
const SubscribeSchema = z.lazy(() =>
  z.strictObject({
    topics: z.array(TopicSchema).min(1).max(32),
    /** Per topic, the cursor to start after: a seq for `session:<key>`, a log seq for `logs*`. */
    after: z.record(z.string(), z.number().int().min(0)).optional(),
  }),
);
const UnsubscribeSchema = z.lazy(() => z.strictObject({ topics: z.array(z.string().min(1).max(600)).min(1).max(32) }));

interface Sub {
  conn: Connection;
  identity: ClientIdentity;
  ctx: MethodContext;
  /** Cursor of `session:<key>` (event seq) and `logs*` (log seq). */
  after: number;
  /** Snapshot topics: the JSON last pushed to this connection. */
  last?: string;
}

/** Per connection: topic -> subscription. */
type ConnSubs = Map<string, Sub>;

/**
 * Creates the hub and its two methods, to be added to the method table.
 * @returns name -> handler (`events.subscribe`, `events.unsubscribe`)
 */
export function createEventMethods(deps: EventHubDeps): Map<string, MethodHandler> {
  const tail = deps.logTail ?? processLogTail;
  const soft = deps.softBufferedBytes ?? 256 * 1024;
  const maxTopics = deps.maxTopics ?? 32;
  const byConn = new Map<Connection, ConnSubs>();
  /** topic -> subscribers. */
  const byTopic = new Map<string, Set<Sub>>();
  const timers = new Map<string, ReturnType<typeof setInterval>>();
  const dirtySessions = new Set<string>();
  let namedSessions = new Set<string>();
  let allSessions = false;

  const push = (sub: Sub, topic: string, data: unknown): boolean => {
    if (sub.conn.closed || sub.conn.bufferedBytes() > soft) return false;
    sub.ctx.notify(EVENT_NOTIFICATION, { topic, data });
    return true;
  };

  // ---- timers: one per topic kind, running only while that kind has subscribers ----
  const kindOf = (topic: string): string => (topic.startsWith("session:") ? "session" : topic.startsWith("logs") ? "logs" : topic);
  const hasKind = (kind: string): boolean => {
    for (const t of byTopic.keys()) if (kindOf(t) === kind) return true;
    return false;
  };
  const intervalOf = (kind: string): number =>
    kind === "status"
      ? (deps.statusIntervalMs ?? 1000)
      : kind === "session"
        ? (deps.sessionFlushMs ?? 250)
        : kind === "logs"
          ? (deps.logsIntervalMs ?? 500)
          : (deps.snapshotIntervalMs ?? 1000);
  const tickOf = (kind: string): (() => Promise<void> | void) =>
    kind === "session" ? flushSession : kind === "logs" ? flushLogs : kind === "sessions" ? flushSessions : () => flushSnapshot(kind);
  const ensureTimer = (kind: string) => {
    if (timers.has(kind)) return;
    let running = false;
    const tick = tickOf(kind);
    const t = setInterval(() => {
      if (running) return; // a slow tick (store read) is never overlapped
      running = true;
      void Promise.resolve()
        .then(tick)
        .catch(() => {})
        .finally(() => (running = false));
    }, intervalOf(kind));
    t.unref?.();
    timers.set(kind, t);
  };
  const maybeStopTimer = (kind: string) => {
    if (hasKind(kind)) return;
    clearInterval(timers.get(kind));
    timers.delete(kind);
    if (kind === "sessions") (namedSessions = new Set()), (allSessions = false);
  };

  async function snapshot(topic: string, ctx: MethodContext): Promise<unknown> {
    const handler = deps.methods.get(SNAPSHOT_METHODS[topic]!);
    if (handler === undefined) throw new RpcError(ErrorCode.MethodNotFound, `topic ${topic}: this gateway has no ${SNAPSHOT_METHODS[topic]}`);
    const value = await handler(undefined, ctx);
    if (topic !== "status" || deps.readiness === undefined) return value;
    const r = deps.readiness();
    const answer = (a: { status: number; body: string } | undefined) => (a === undefined ? undefined : { httpStatus: a.status, ...safeJson(a.body) });
    return { ...(value as object), health: answer(r.health), ready: answer(r.ready) };
  }

  async function flushSnapshot(topic: string): Promise<void> {
    const subs = byTopic.get(topic);
    if (subs === undefined || subs.size === 0) return;
    // Identity-independent results (the scope was checked per subscriber at subscribe time): once for all.
    const first = subs.values().next().value!;
    const value = await snapshot(topic, first.ctx);
    const json = JSON.stringify(value);
    for (const sub of subs) {
      if (topic !== "status" && sub.last === json) continue;
      if (push(sub, topic, value)) sub.last = json;
    }
  }

  async function flushSessions(): Promise<void> {
    const subs = byTopic.get("sessions");
    if (subs === undefined || (namedSessions.size === 0 && !allSessions)) return;
    const keys = [...namedSessions];
    const all = allSessions || keys.length > SESSIONS_ROWS_MAX;
    namedSessions = new Set();
    allSessions = false;
    // The changed rows, read once for every subscriber (a deleted session has none): a list on
    // screen is patched with them instead of read again.
    const rows = new Map<string, SessionInfo>();
    if (!all) {
      for (const info of await Promise.all(keys.map((k) => deps.log.info(k).catch(() => undefined)))) if (info !== undefined) rows.set(info.sessionKey, info);
    }
    for (const sub of subs) {
      const admin = sub.identity.scopes.has("admin");
      const mine = admin ? keys : keys.filter((k) => ownsKey(sub.identity, k));
      if (mine.length === 0 && !all) continue;
      // A skipped push (slow client) is not re-queued: the next change tells it to look again.
      push(sub, "sessions", all ? { sessionKeys: mine, all: true } : { sessionKeys: mine, sessions: mine.flatMap((k) => rows.get(k) ?? []) });
    }
  }

  async function flushSession(): Promise<void> {
    if (dirtySessions.size === 0) return;
    const keys = [...dirtySessions];
    dirtySessions.clear();
    for (const key of keys) {
      const topic = `session:${key}`;
      for (const sub of byTopic.get(topic) ?? []) {
        if (sub.conn.closed) continue;
        if (sub.conn.bufferedBytes() > soft) {
          dirtySessions.add(key); // its cursor stays: a later flush sends what it missed
          continue;
        }
        const events = await deps.log.read(key, { afterSeq: sub.after, limit: SESSION_PUSH_MAX }).catch((err: unknown) => {
          if (err instanceof StoreError) return [];
          throw err;
        });
        if (events.length === 0) continue;
        if (push(sub, topic, { sessionKey: key, events })) sub.after = events[events.length - 1]!.seq;
        if (events.length === SESSION_PUSH_MAX) dirtySessions.add(key);
      }
    }
  }

  function flushLogs(): void {
    const last = tail.lastSeq();
    for (const [topic, subs] of byTopic) {
      if (kindOf(topic) !== "logs") continue;
      const minLevel = topic === "logs" ? 0 : LOG_LEVELS[topic.slice(5) as keyof typeof LOG_LEVELS];
      for (const sub of subs) {
        if (sub.after >= last) continue;
        const lines = tail.read({ afterSeq: sub.after, minLevel, limit: 500 });
        if (lines.length === 0 || push(sub, topic, { lines, lastSeq: last })) sub.after = last;
      }
    }
  }

  const onChange = (c: SessionChange) => {
    if (byTopic.has("sessions")) {
      if (c.sessionKey === undefined || namedSessions.size >= SESSIONS_NAMED_MAX) allSessions = true;
      else namedSessions.add(c.sessionKey);
    }
    if (c.sessionKey === undefined) return;
    const subs = byTopic.get(`session:${c.sessionKey}`);
    if (subs === undefined) return;
    if (c.deleted) {
      for (const sub of subs) push(sub, `session:${c.sessionKey}`, { sessionKey: c.sessionKey, deleted: true });
      return;
    }
    dirtySessions.add(c.sessionKey);
  };
  deps.changes?.on(onChange);

  function remove(conn: Connection, topic: string): void {
    const subs = byConn.get(conn);
    const sub = subs?.get(topic);
    if (sub === undefined) return;
    subs!.delete(topic);
    const set = byTopic.get(topic);
    set?.delete(sub);
    if (set?.size === 0) byTopic.delete(topic);
    maybeStopTimer(kindOf(topic));
  }

  /** Checks the identity may receive `topic`, and gives the cursor to start after. */
  async function admit(topic: string, ctx: MethodContext, after: number | undefined): Promise<{ after: number; initial?: unknown }> {
    const { identity } = ctx;
    if (topic in SNAPSHOT_METHODS) return { after: 0, initial: await snapshot(topic, ctx) }; // the method checks its scope
    if (topic === "sessions") {
      if (!identity.scopes.has("admin")) requireScope(identity, "chat", "events.subscribe sessions");
      return { after: 0 };
    }
    if (topic.startsWith("logs")) {
      requireScope(identity, "admin", `events.subscribe ${topic}`);
      return { after: after ?? tail.lastSeq() };
    }
    const key = topic.slice("session:".length);
    let parts: ReturnType<typeof parseSessionKey>;
    try {
      parts = parseSessionKey(key);
    } catch (err) {
      if (err instanceof StoreError) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: topic ${topic}: ${err.message}`);
      throw err;
    }
    if (!identity.scopes.has("admin") && !ownsSession(identity, parts)) {
      if (!identity.scopes.has("chat")) throw forbidden("chat", "sessions are reached with scope chat (own ws sessions) or admin (any)");
      throw forbidden("admin", `session ${key} is not one of this client's (channel ws, account ${identity.account})`);
    }
    return { after: after ?? (await deps.log.info(key))?.lastSeq ?? 0 };
  }

  const methods = new Map<string, MethodHandler>();

  // `events.subscribe {topics, after?}` -> `{topics}` (every topic this connection now holds).
  methods.set("events.subscribe", async (params, ctx) => {
    const p = parseParams(SubscribeSchema, params);
    let subs = byConn.get(ctx.conn);
    const fresh = p.topics.filter((t) => !subs?.has(t));
    if ((subs?.size ?? 0) + new Set(fresh).size > maxTopics) {
      throw new RpcError(ErrorCode.InvalidParams, `Invalid params: at most ${maxTopics} topics per connection (this one holds ${subs?.size ?? 0})`);
    }
    // Every topic is admitted before any is added: a refusal leaves the connection as it was.
    const admitted = await Promise.all(fresh.map(async (t) => [t, await admit(t, ctx, p.after?.[t])] as const));
    if (ctx.conn.closed) return { topics: [] };
    if (subs === undefined) {
      byConn.set(ctx.conn, (subs = new Map()));
      const conn = ctx.conn;
      ctx.signal.addEventListener("abort", () => {
        for (const t of [...(byConn.get(conn)?.keys() ?? [])]) remove(conn, t);
        byConn.delete(conn);
      });
    }
    for (const [topic, a] of admitted) {
      if (subs.has(topic)) continue;
      const sub: Sub = { conn: ctx.conn, identity: ctx.identity, ctx, after: a.after };
      subs.set(topic, sub);
      let set = byTopic.get(topic);
      if (set === undefined) byTopic.set(topic, (set = new Set()));
      set.add(sub);
      ensureTimer(kindOf(topic));
      if (a.initial !== undefined) {
        // After the response: the client learns it is subscribed first, then the current state.
        const json = JSON.stringify(a.initial);
        setImmediate(() => push(sub, topic, a.initial) && (sub.last = json));
      }
      if (kindOf(topic) === "session" && a.after < ((await deps.log.info(topic.slice(8)).catch(() => undefined))?.lastSeq ?? 0)) {
        dirtySessions.add(topic.slice(8)); // events after the client's cursor already exist
      }
    }
    return { topics: [...subs.keys()] };
  });

  // `events.unsubscribe {topics}` -> `{topics}` (those still held).
  methods.set("events.unsubscribe", (params, ctx) => {
    const p = parseParams(UnsubscribeSchema, params);
    for (const t of p.topics) remove(ctx.conn, t);
    return { topics: [...(byConn.get(ctx.conn)?.keys() ?? [])] };
  });

  return methods;
}

function ownsKey(identity: ClientIdentity, key: string): boolean {
  try {
    return ownsSession(identity, parseSessionKey(key));
  } catch {
    return false;
  }
}

function safeJson(body: string): Record<string, unknown> {
  try {
    const v = JSON.parse(body) as unknown;
    return typeof v === "object" && v !== null ? (v as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
