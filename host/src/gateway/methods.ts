import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import { ReplayedTurnError, summarizeUsage, type AgentRuntime, type TurnEvent, type UsageSummary } from "../agent/index.js";
import type { ChannelCounters, PairingBook } from "../channels/index.js";
import type { BusStatus } from "../bus/index.js";
import {
  ErrorCode,
  RpcError,
  ChatHistorySchema,
  ChatSendSchema,
  ChatAbortSchema,
  NoParamsSchema,
  parseParams,
  PluginLoadParamsSchema,
  PluginUnloadParamsSchema,
  SessionKeySchema,
  SessionsListSchema,
  SessionsResetSchema,
  SessionsSearchSchema,
  SessionsPruneSchema,
  UsageSummarySchema,
  toErrorObject,
  type ChatAbortResult,
  type ChatEventParams,
  type ChatSendResult,
  type StatusAgent,
  type StatusResult,
} from "../protocol/index.js";
import type { PluginInfo, PluginManager, PluginRegistry } from "../plugins/index.js";
import type { McpServerInfo } from "../mcp/index.js";
import type { Router } from "../router/index.js";
import { StoreError, parseSessionKey, type SearchHit, type SessionEvent, type SessionInfo, type SessionKeyParts, type SessionLog } from "../store/index.js";
import { VERSION } from "../version.js";
import { forbidden, ownsSession, requireScope, WEBCHAT_CHANNEL, type ClientIdentity } from "./identity.js";
import { registerCronMethods, registerFlowMethods, type CronMethodDeps } from "./cron-methods.js";
import type { MethodHandler } from "./rpc.js";
import { addMemoryMethods } from "./memory-methods.js";
import type { AbortElsewhere } from "./remote-abort.js";
import { addPairingMethods } from "./pairing-methods.js";
import type { ConfigReloadResult } from "./reload.js";
import type { TransportName } from "./types.js";
import { addApprovalMethods, type ApprovalsApi } from "./approval-methods.js";
import type { Config } from "../config/index.js";
import { createUiMethods } from "./methods-ui.js";
import { createEventMethods, type EventHubDeps } from "./event-hub.js";
import { createDeadLetterMethods } from "./deadletter-methods.js";
import { createModelRequestMethods } from "./model-request-methods.js";
import type { SessionChanges } from "./session-changes.js";
import type { DeadLetterStore } from "../bus/index.js";

export type { PluginInfo };

/** Default page size of `chat.history`, events. */
export const HISTORY_PAGE = 100;

/**
 * Runs a store call for a method: a StoreError `invalid_argument` (bad session key, bad cursor)
 * becomes -32602; every other failure stays an internal error (-32603, logged by the dispatcher).
 */
async function storeCall<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof StoreError && err.code === "invalid_argument") throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${err.message}`);
    throw err;
  }
}

/** Largest number of store hits a chat-only `sessions.search` filters down to its own sessions. */
const SEARCH_FILTER_POOL = 200;

/** Session key parts, or -32602 for a malformed key (the store's message). */
function keyParts(sessionKey: string): SessionKeyParts {
  try {
    return parseSessionKey(sessionKey);
  } catch (err) {
    if (err instanceof StoreError) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${err.message}`);
    throw err;
  }
}

/**
 * Checks that the identity may read or reset the session: its own `ws` session (scope `chat`),
 * or any session (scope `admin`).
 * @throws RpcError -32602 for a malformed key, -32010 for another identity's session
 */
function assertSessionAccess(identity: ClientIdentity, sessionKey: string): void {
  const parts = keyParts(sessionKey);
  if (identity.scopes.has("admin") || ownsSession(identity, parts)) return;
  if (!identity.scopes.has("chat")) throw forbidden("chat", "sessions are reached with scope chat (own ws sessions) or admin (any)");
  throw forbidden("admin", `session ${sessionKey} is not one of this client's (channel ws, account ${identity.account})`);
}

/** What the protocol methods reach into. */
export interface MethodDeps {
  router: Router;
  runtime: Pick<AgentRuntime, "run" | "sessionCount" | "resetSession" | "deleteSession" | "pruneSessions" | "abort" | "sessionOfRun"> &
    Partial<Pick<AgentRuntime, "memory" | "forgetPeer">>;
  /** The session log behind `sessions.*` and `chat.history`. */
  log: SessionLog;
  /** `load`/`unload` are optional: without them `plugin.load` / `plugin.unload` answer -32007. */
  plugins: Pick<PluginRegistry, "list"> & Partial<PluginManager>;
  logger: Logger;
  transport: () => TransportName;
  /** `performance.now()` at process start, ms. */
  startedAt: number;
  /** Per-channel counters for `status` (received, accepted, refused, answered, ...); absent = no channels. */
  channels?: () => Record<string, ChannelCounters>;
  /** The message bus's health for `status` (`null`: no bus configured); absent = not reported. */
  bus?: () => BusStatus | null;
  /** The agents for `status`; absent = not reported. */
  agents?: () => StatusAgent[];
  /** The session store URL without credentials for `status`; absent = not reported. */
  store?: string;
  /** Re-reads and applies the config file (`config.reload`, scope admin); absent = the method does not exist (-32601). */
  reloadConfig?: () => Promise<ConfigReloadResult>;
  /** MCP servers for `mcp.list` and `status` (host/src/mcp); absent = `mcp.list` answers `[]`. */
  mcp?: { list(): McpServerInfo[] };
  /** Time zone of `usage.summary` day groups (`[budgets] timezone`); default "UTC". */
  budgetTimeZone?: string;
  /** The `cron.*` methods' scheduler and agents (cron-methods.ts); absent = those methods do not exist. */
  cron?: Omit<CronMethodDeps, "logger">;
  /**
   * Asks the other gateways on the bus to stop a turn that does not run here (`chat.abort`;
   * remote-abort.ts). Absent: no bus, only this process's turns can be stopped.
   */
  abortElsewhere?: AbortElsewhere;
  /** Tool calls parked for approval (`approvals.*`, scope admin); absent = the methods do not exist. */
  approvals?: ApprovalsApi;
  /** Channel pairing (`pairing.list|approve|deny`, pairing-methods.ts); absent = those methods do not exist. */
  pairing?: PairingBook;
  /** The running configuration, for the Control UI's methods (methods-ui.ts); absent = they answer an error. */
  config?: () => Config;
  /** Session writes for `events.subscribe` (session-changes.ts); absent = session topics never push. */
  sessionChanges?: SessionChanges;
  /** `/health` and `/ready` answers added to the `status` topic's pushes. */
  readiness?: EventHubDeps["readiness"];
  /** The bus's dead letters (`deadletters.*`); absent = no bus. */
  deadLetters?: DeadLetterStore;
}

/**
 * The method table of wire protocol v1 (docs/protocol.md): `ping`, `status`, `plugin.list`,
 * `plugin.load`, `plugin.unload`, `chat.send`, `chat.abort`, `chat.history`, `sessions.list`,
 * `sessions.reset`, `sessions.delete`, `sessions.search`, and `config.reload` when
 * `deps.reloadConfig` is given. Each method checks the scopes of the
 * caller's identity (`ctx.identity`) before doing anything; a refusal is -32010.
 */
export function createMethods(deps: MethodDeps): Map<string, MethodHandler> {
  const methods = new Map<string, MethodHandler>();

  methods.set("ping", (params) => {
    parseParams(NoParamsSchema, params);
    return "pong";
  });

  methods.set("status", async (params): Promise<StatusResult> => {
    parseParams(NoParamsSchema, params);
    const sessions = await deps.runtime.sessionCount();
    const plugins = deps.plugins.list();
    return {
      version: VERSION,
      uptimeMs: Math.round(performance.now() - deps.startedAt),
      transport: deps.transport(),
      plugins: plugins.filter((p) => p.status !== "error").length,
      sessions,
      pid: process.pid,
      pluginStats: plugins.map((p) => ({ name: p.name, kind: p.kind, status: p.status, calls: p.calls, errors: p.errors, p50Ms: p.p50Ms, p99Ms: p.p99Ms })),
      ...(deps.agents ? { agents: deps.agents() } : {}),
      ...(deps.store !== undefined ? { store: deps.store } : {}),
      ...(deps.channels ? { channels: deps.channels() } : {}),
      ...(deps.bus ? { bus: deps.bus() } : {}),
      ...(deps.mcp
        ? {
            mcp: deps.mcp.list().map((m) => ({
              name: m.name,
              state: m.state,
              approval: m.approval,
              tools: m.tools.length,
              calls: m.calls,
              errors: m.errors,
              restarts: m.restarts,
            })),
          }
        : {}),
    };
  });

  // `mcp.list`: the configured MCP servers, their state, approval, tools and counters (docs/mcp.md).
  // Scope admin: a server's command line or URL is the operator's configuration.
  methods.set("mcp.list", (params, ctx): McpServerInfo[] => {
    requireScope(ctx.identity, "admin", "mcp.list");
    parseParams(NoParamsSchema, params);
    return deps.mcp?.list() ?? [];
  });

  methods.set("plugin.list", (params): PluginInfo[] => {
    parseParams(NoParamsSchema, params);
    return deps.plugins.list();
  });

  // `plugin.load {path}`: loads or reloads a .wasm file; result: its plugin.list entry.
  methods.set("plugin.load", async (params, ctx): Promise<PluginInfo> => {
    requireScope(ctx.identity, "admin", "plugin.load");
    const p = parseParams(PluginLoadParamsSchema, params);
    const load = deps.plugins.load;
    if (load === undefined) throw new RpcError(ErrorCode.PluginError, "this gateway cannot load plugins at run time");
    try {
      return await load(p.path);
    } catch (err) {
      throw new RpcError(ErrorCode.PluginError, `cannot load plugin: ${(err as Error).message}`);
    }
  });

  // `config.reload`: re-reads the config file and applies it (an operator's act: scope admin).
  // An invalid file is a result (`status: "invalid"`, `error` naming the field), not an RPC error:
  // the request itself was fine, and the running configuration stays.
  const reloadConfig = deps.reloadConfig;
  if (reloadConfig !== undefined) {
    methods.set("config.reload", async (params, ctx): Promise<ConfigReloadResult> => {
      requireScope(ctx.identity, "admin", "config.reload");
      parseParams(NoParamsSchema, params);
      return reloadConfig();
    });
  }

  // `plugin.unload {name}`: unloads a plugin by name; result: its plugin.list entry as it was.
  methods.set("plugin.unload", async (params, ctx): Promise<PluginInfo> => {
    requireScope(ctx.identity, "admin", "plugin.unload");
    const p = parseParams(PluginUnloadParamsSchema, params);
    const unload = deps.plugins.unload;
    if (unload === undefined) throw new RpcError(ErrorCode.PluginError, "this gateway cannot unload plugins at run time");
    try {
      return await unload(p.name);
    } catch (err) {
      throw new RpcError(ErrorCode.PluginError, `cannot unload plugin: ${(err as Error).message}`);
    }
  });

  methods.set("chat.send", async (params, ctx): Promise<ChatSendResult> => {
    const { identity } = ctx;
    requireScope(identity, "chat", "chat.send");
    const p = parseParams(ChatSendSchema, params);
    const account = p.account ?? identity.account;
    // A client speaks as itself: its own account on channel ws (any peer id, for several
    // conversations). Acting as a platform user or another client needs `impersonate`.
    // Channel `webchat` (the Control UI's chat) is a client's own too: same account, same scope.
    if (((p.channel !== "ws" && p.channel !== WEBCHAT_CHANNEL) || account !== identity.account) && !identity.scopes.has("impersonate")) {
      throw forbidden("impersonate", `chat.send as channel ${p.channel}, account ${account} (this client is channel ws, account ${identity.account})`);
    }
    // `channel:<channel>:<account>:<id>` keys name platform messages: a client must not claim one
    // (its turn would answer the platform's message) unless it may act as that channel anyway.
    if (p.idempotencyKey?.startsWith("channel:") && !identity.scopes.has("impersonate")) {
      throw forbidden("impersonate", "idempotencyKey starting with channel: is reserved for channel messages");
    }
    const route = deps.router.resolve({ channel: p.channel, account, peer: p.peer, guild: p.guild, team: p.team });
    // A replayed key may name another client's turn: answer it only to whoever may read that
    // session (or could have sent that turn as anyone: `impersonate`).
    const checkReplay = (sessionKey: string) => {
      if (!identity.scopes.has("impersonate")) assertSessionAccess(identity, sessionKey);
    };
    const runId = randomUUID();
    let seq = 0;
    const emit = (ev: TurnEvent) => {
      const event: ChatEventParams = { requestId: ctx.requestId, runId, sessionKey: route.sessionKey, seq: seq++, type: ev.type, data: ev.data };
      ctx.notify("chat.event", event);
    };
    const started = performance.now();
    try {
      const out = await deps.runtime.run(
        {
          agentId: route.agentId,
          sessionKey: route.sessionKey,
          content: p.content,
          runId,
          channel: p.channel,
          account,
          peer: p.peer,
          ...(p.idempotencyKey !== undefined ? { idempotencyKey: p.idempotencyKey } : {}),
        },
        emit,
        // A client that disconnects cancels its turn, unless it sent an idempotencyKey (it may reconnect and repeat it).
        ctx.signal,
      );
      deps.logger.debug(
        {
          runId: out.runId,
          sessionKey: route.sessionKey,
          agentId: route.agentId,
          matchedBy: route.matchedBy,
          ms: +(performance.now() - started).toFixed(2),
          iterations: out.iterations,
          usage: out.usage,
          replayed: out.replayed,
        },
        "turn finished",
      );
      if (out.replayed) checkReplay(out.sessionKey);
      const result: ChatSendResult = {
        runId: out.runId,
        sessionKey: out.sessionKey,
        agentId: out.agentId,
        text: out.text,
        stopReason: out.stopReason,
        usage: out.usage,
      };
      return out.replayed ? { ...result, replayed: true } : result;
    } catch (err) {
      if (err instanceof RpcError && err.code === ErrorCode.Forbidden) throw err;
      // A repeated idempotencyKey whose turn failed: the original error, without events.
      if (err instanceof ReplayedTurnError) {
        checkReplay(err.sessionKey);
        throw new RpcError(err.code, err.message, { runId: err.runId, replayed: true });
      }
      const error = toErrorObject(err);
      deps.logger.warn({ runId, sessionKey: route.sessionKey, code: error.code, error: error.message }, "turn failed");
      emit({ type: "error", data: { code: error.code, message: error.message } });
      throw err;
    }
  });

  // `chat.abort {runId | sessionKey}`: stops a running turn (or a queued message, by run id).
  // Whoever may read the session may stop its turn: its own ws sessions (scope chat), or any (admin).
  // With a bus, a turn not running here is looked for on the other gateways (remote-abort.ts).
  methods.set("chat.abort", async (params, ctx): Promise<ChatAbortResult> => {
    const p = parseParams(ChatAbortSchema, params);
    const sessionKey = p.sessionKey ?? deps.runtime.sessionOfRun(p.runId!);
    // A run not running or queued here (ended, unknown, or on another gateway): the others are
    // asked, limited to this client's own ws sessions unless it is an admin.
    if (sessionKey === undefined) {
      requireScope(ctx.identity, "chat", "chat.abort");
      if (deps.abortElsewhere === undefined) return { aborted: [] };
      const account = ctx.identity.scopes.has("admin") ? undefined : ctx.identity.account;
      const remote = await deps.abortElsewhere({ runId: p.runId! }, "chat.abort", account);
      if (remote.aborted.length === 0 && remote.denied === true)
        throw forbidden("admin", `run ${p.runId} is not one of this client's (channel ws, account ${ctx.identity.account})`);
      deps.logger.info({ runIds: remote.aborted, client: ctx.identity.account, elsewhere: true }, "chat.abort");
      return { aborted: remote.aborted };
    }
    assertSessionAccess(ctx.identity, sessionKey);
    let aborted = deps.runtime.abort(p.runId !== undefined ? { runId: p.runId } : { sessionKey }, "chat.abort");
    if (aborted.length === 0 && p.sessionKey !== undefined && deps.abortElsewhere !== undefined) {
      aborted = (await deps.abortElsewhere({ sessionKey }, "chat.abort")).aborted;
    }
    deps.logger.info({ sessionKey, runIds: aborted, client: ctx.identity.account }, "chat.abort");
    return { aborted };
  });

  // `sessions.list {agent?, channel?, peer?, cursor?, limit?}`: sessions by key, paginated.
  methods.set("sessions.list", async (params, ctx): Promise<{ sessions: SessionInfo[]; nextCursor?: string }> => {
    const { identity } = ctx;
    const p = parseParams(SessionsListSchema, params);
    if (identity.scopes.has("admin")) return storeCall(() => deps.log.listSessions(p));
    requireScope(identity, "chat", "sessions.list");
    if (p.channel !== undefined && p.channel !== "ws" && p.channel !== WEBCHAT_CHANNEL)
      throw forbidden("admin", `sessions.list of channel ${p.channel} (this client sees its own ws and webchat sessions)`);
    const channel = p.channel ?? "ws";
    // The store filters by channel, not account: page through the ws sessions and keep this
    // client's. Each store page asks only for what is still missing, so the cursor of the last
    // page read is exactly where the next call must go on.
    const want = p.limit ?? HISTORY_PAGE;
    const sessions: SessionInfo[] = [];
    let cursor = p.cursor;
    for (;;) {
      const page = await storeCall(() => deps.log.listSessions({ ...p, channel, cursor, limit: want - sessions.length }));
      sessions.push(...page.sessions.filter((s) => s.account === identity.account));
      cursor = page.nextCursor;
      if (cursor === undefined) return { sessions };
      if (sessions.length >= want) return { sessions, nextCursor: cursor };
    }
  });

  // `chat.history {sessionKey, afterSeq?, limit?}`: a session's events in seq order, paginated.
  methods.set("chat.history", async (params, ctx): Promise<{ sessionKey: string; events: SessionEvent[]; nextAfterSeq?: number }> => {
    const p = parseParams(ChatHistorySchema, params);
    assertSessionAccess(ctx.identity, p.sessionKey);
    const limit = p.limit ?? HISTORY_PAGE;
    const events = await storeCall(() => deps.log.read(p.sessionKey, { afterSeq: p.afterSeq ?? 0, limit: limit + 1 }));
    if (events.length <= limit) return { sessionKey: p.sessionKey, events };
    const page = events.slice(0, limit);
    return { sessionKey: p.sessionKey, events: page, nextAfterSeq: page[page.length - 1]!.seq };
  });

  // `sessions.reset {sessionKey, reason?}`: a reset marker after the session's queued turns.
  methods.set("sessions.reset", async (params, ctx): Promise<{ sessionKey: string; reset: boolean; seq?: number }> => {
    const p = parseParams(SessionsResetSchema, params);
    assertSessionAccess(ctx.identity, p.sessionKey);
    const seq = await storeCall(() => deps.runtime.resetSession(p.sessionKey, p.reason));
    return seq === undefined ? { sessionKey: p.sessionKey, reset: false } : { sessionKey: p.sessionKey, reset: true, seq };
  });

  // `sessions.delete {sessionKey}`: erases the session after its queued turns.
  // Erasing a log (and freeing its idempotency keys) is an operator's act: scope admin.
  methods.set("sessions.delete", async (params, ctx): Promise<{ sessionKey: string; deleted: boolean }> => {
    requireScope(ctx.identity, "admin", "sessions.delete");
    const p = parseParams(SessionKeySchema, params);
    const deleted = await storeCall(() => deps.runtime.deleteSession(p.sessionKey));
    deps.logger.info({ sessionKey: p.sessionKey, deleted, client: ctx.identity.account, remote: ctx.conn.remoteAddress }, "sessions.delete");
    return { sessionKey: p.sessionKey, deleted };
  });

  // `sessions.prune {olderThanMs, dryRun?}`: retention on demand (`exoclaw sessions prune` while
  // the gateway holds the store). Erasing logs is an operator's act: scope admin.
  methods.set("sessions.prune", async (params, ctx): Promise<{ sessions: number; events: number; kept: number; idleBefore: string; dryRun: boolean }> => {
    requireScope(ctx.identity, "admin", "sessions.prune");
    const p = parseParams(SessionsPruneSchema, params);
    const idleBeforeMs = Date.now() - p.olderThanMs;
    const result = await storeCall(() => deps.runtime.pruneSessions({ idleBeforeMs, dryRun: p.dryRun === true }));
    deps.logger.info({ ...result, dryRun: p.dryRun === true, client: ctx.identity.account }, "sessions.prune");
    return { ...result, idleBefore: new Date(idleBeforeMs).toISOString(), dryRun: p.dryRun === true };
  });

  // `sessions.search {query, limit?, sessionKey?}`: full-text search over session text, best first.
  methods.set("sessions.search", async (params, ctx): Promise<{ hits: SearchHit[] }> => {
    const { identity } = ctx;
    const p = parseParams(SessionsSearchSchema, params);
    if (p.sessionKey !== undefined) assertSessionAccess(identity, p.sessionKey);
    if (identity.scopes.has("admin") || p.sessionKey !== undefined) {
      return { hits: await storeCall(() => deps.log.search(p.query, { limit: p.limit, sessionKey: p.sessionKey })) };
    }
    requireScope(identity, "chat", "sessions.search");
    // The store searches everything or one session: take the best hits overall and keep this
    // client's (documented: a chat-only search sees its hits among the best 200).
    const pool = await storeCall(() => deps.log.search(p.query, { limit: SEARCH_FILTER_POOL }));
    const own = pool.filter((h) => ownsSession(identity, keyParts(h.event.sessionKey)));
    return { hits: own.slice(0, p.limit ?? 20) };
  });

  // `usage.summary {sinceMs?, by?}`: token and USD totals of the stored usage events. Scope
  // admin sees every session; scope chat its own ws sessions only (like sessions.list).
  methods.set("usage.summary", async (params, ctx): Promise<UsageSummary> => {
    const { identity } = ctx;
    const p = parseParams(UsageSummarySchema, params);
    const admin = identity.scopes.has("admin");
    if (!admin) requireScope(identity, "chat", "usage.summary");
    return storeCall(() =>
      summarizeUsage(deps.log, {
        ...(p.sinceMs !== undefined ? { sinceMs: p.sinceMs } : {}),
        ...(p.by !== undefined ? { by: p.by } : {}),
        timeZone: deps.budgetTimeZone ?? "UTC",
        ...(admin ? {} : { include: (s: SessionInfo) => ownsSession(identity, s) }),
      }),
    );
  });

  // `memory.list|search|delete` (gateway/memory-methods.ts), when the runtime has memory.
  if (deps.runtime.forgetPeer !== undefined) addMemoryMethods(methods, { runtime: deps.runtime as Pick<AgentRuntime, "memory" | "forgetPeer"> });

  if (deps.cron !== undefined) registerCronMethods(methods, { ...deps.cron, logger: deps.logger });
  if (deps.cron?.flows !== undefined) registerFlowMethods(methods, { flows: deps.cron.flows, logger: deps.logger });
  if (deps.approvals !== undefined) addApprovalMethods(methods, deps.approvals);
  if (deps.pairing !== undefined) addPairingMethods(methods, deps.pairing, deps.logger);
  // The Control UI's methods (logs.tail, agents.list, channels.list, plugin.approve).
  for (const [name, handler] of createUiMethods(deps)) methods.set(name, handler);
  // `deadletters.*`, `sessions.request`, and server-push `events.subscribe|unsubscribe`.
  for (const [name, handler] of createDeadLetterMethods(deps)) methods.set(name, handler);
  for (const [name, handler] of createModelRequestMethods(deps)) methods.set(name, handler);
  const hub = createEventMethods({
    methods,
    log: deps.log,
    ...(deps.sessionChanges ? { changes: deps.sessionChanges } : {}),
    ...(deps.readiness ? { readiness: deps.readiness } : {}),
  });
  for (const [name, handler] of hub) methods.set(name, handler);

  return methods;
}
