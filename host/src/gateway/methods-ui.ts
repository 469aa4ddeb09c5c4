/**
 * Methods the Control UI needs, available to every client like the rest of protocol v1
 * (docs/protocol.md): `logs.tail`, `agents.list`, `channels.list`, `plugin.approve`. Each is
 * scope `admin` (they show or change the operator's configuration); `plugin.approve` is logged at
 * info with the client's account and address.
 */
import * as z from "zod";
import type { Config } from "../config/index.js";
import { LOG_LEVELS, processLogTail, type LogTail, type TailLine } from "../log/index.js";
import { ApprovalStore, approvalFor, checkTrustStoreLocation, describeRequest, validatePluginFile, type PluginInfo } from "../plugins/index.js";
import { ErrorCode, RpcError, parseParams } from "../protocol/index.js";
import { requireScope } from "./identity.js";
import type { MethodHandler } from "./rpc.js";
import type { ChannelCounters } from "../channels/index.js";
import { ChannelErrors, type ChannelAccountHealth } from "./channel-errors.js";

/** What the UI methods reach into (a subset of `MethodDeps`). */
export interface UiMethodDeps {
  /** The running configuration (as last reloaded); absent = `agents.list`, `channels.list`, `plugin.approve` answer -32601-like errors. */
  config?: () => Config;
  plugins: { list(): PluginInfo[]; load?(path: string): Promise<PluginInfo> };
  channels?: () => Record<string, ChannelCounters>;
  logger: { info(obj: object, msg: string): void };
  /** Where `logs.tail` reads; default the process's ({@link processLogTail}). */
  logTail?: LogTail;
}

const LogsTailSchema = z.lazy(() =>
  z.strictObject({
    level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).optional(),
    afterSeq: z.number().int().min(0).optional(),
    limit: z.number().int().min(1).max(1000).optional(),
  }),
);

const PluginApproveSchema = z.lazy(() =>
  z.strictObject({
    name: z.string().min(1).max(64),
    /** The module the operator saw (`plugin.list`'s `sha256`): a different module is refused. */
    sha256: z.string().regex(/^[0-9a-f]{64}$/, "must be the module's sha256 in hex, as plugin.list shows it"),
  }),
);

const NoParams = z.lazy(() => z.union([z.undefined(), z.strictObject({})]));

/** Result of `logs.tail`. */
export interface LogsTailResult {
  /** Oldest first; each `line` is the JSON log line as written (secrets already redacted). */
  lines: TailLine[];
  /** Pass as `afterSeq` next time. */
  lastSeq: number;
}

/** One entry of `agents.list`. */
export interface AgentListEntry {
  id: string;
  default: boolean;
  provider: string;
  model: string;
  /** The failover chain after the first model, `provider/model`. */
  fallbacks: string[];
  systemPrompt: string | null;
  soulFile: string | null;
  tools: string[];
  queue: unknown;
  outbound: string[];
  maxIterations: number;
  maxTokens: number;
  /** The bindings whose agent is this one, as configured. */
  bindings: unknown[];
}

/** One entry of `channels.list`. */
export interface ChannelListEntry {
  name: string;
  plugin: string;
  /** Accounts with their own webhook path (`/webhook/<channel>/<account>`); empty = `/webhook/<channel>` only. */
  accounts: string[];
  /** The allowlist (`allow`): peers that may talk to the agents; empty = nobody. */
  allow: string[];
  polled: boolean;
  /** Whether the channel's plugin is loaded. */
  loaded: boolean;
  counters: ChannelCounters | null;
  /** Per account (`""`: lines naming none), warnings and errors logged about the channel and the last one (channel-errors.ts). */
  health: ChannelAccountHealth[];
}

function needConfig(deps: UiMethodDeps): Config {
  if (deps.config === undefined) throw new RpcError(ErrorCode.MethodNotFound, "this gateway does not report its configuration");
  return deps.config();
}

/**
 * The UI methods, to be added to the method table.
 * @returns name -> handler
 */
export function createUiMethods(deps: UiMethodDeps): Map<string, MethodHandler> {
  const methods = new Map<string, MethodHandler>();
  const tail = deps.logTail ?? processLogTail;
  const channelErrors = new ChannelErrors();
  channelErrors.attach(tail);

  // `logs.tail {level?, afterSeq?, limit?}`: the gateway's last log lines (as written: redacted).
  methods.set("logs.tail", (params, ctx): LogsTailResult => {
    requireScope(ctx.identity, "admin", "logs.tail");
    const p = parseParams(LogsTailSchema, params);
    const lines = tail.read({ afterSeq: p.afterSeq ?? 0, minLevel: LOG_LEVELS[p.level ?? "trace"], limit: p.limit ?? 200 });
    return { lines, lastSeq: tail.lastSeq() };
  });

  methods.set("agents.list", (params, ctx): AgentListEntry[] => {
    requireScope(ctx.identity, "admin", "agents.list");
    parseParams(NoParams, params);
    const config = needConfig(deps);
    return config.agents.map((a) => ({
      id: a.id,
      default: a.id === config.defaultAgent,
      provider: a.provider,
      model: a.model,
      fallbacks: (a.models ?? []).slice(1).map((m) => `${m.provider}/${m.model}`),
      systemPrompt: a.systemPrompt ?? null,
      soulFile: a.soulFile ?? null,
      tools: a.tools,
      queue: a.queue,
      outbound: a.outbound,
      maxIterations: a.maxIterations,
      maxTokens: a.maxTokens,
      bindings: config.bindings.filter((b) => b.agent === a.id),
    }));
  });

  methods.set("channels.list", (params, ctx): ChannelListEntry[] => {
    requireScope(ctx.identity, "admin", "channels.list");
    parseParams(NoParams, params);
    const config = needConfig(deps);
    const loaded = new Set(
      deps.plugins
        .list()
        .filter((p) => p.status === "loaded" && p.kind === "channel")
        .map((p) => p.name),
    );
    const counters = deps.channels?.() ?? {};
    return config.channels.map((c) => ({
      name: c.name,
      plugin: c.plugin,
      accounts: c.accounts,
      allow: c.allow,
      polled: c.poll !== undefined,
      loaded: loaded.has(c.plugin),
      counters: counters[c.name] ?? null,
      health: channelErrors.of(c.name),
    }));
  });

  // `plugin.approve {name, sha256}`: what `exoclaw plugin approve <file>` does, for the module
  // the operator saw; then the file is reloaded so that it runs with the approval at once.
  methods.set("plugin.approve", async (params, ctx) => {
    requireScope(ctx.identity, "admin", "plugin.approve");
    const p = parseParams(PluginApproveSchema, params);
    const config = needConfig(deps);
    const info = deps.plugins.list().find((x) => x.name === p.name && x.sha256 === p.sha256);
    if (info === undefined) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: no plugin ${p.name} with sha256 ${p.sha256} is known to this gateway`);
    try {
      await checkTrustStoreLocation(config.stateDir, config.plugins.dirs);
      const v = await validatePluginFile(info.path);
      if (v.sha256 !== p.sha256) throw new Error(`${info.path} changed on disk (sha256 ${v.sha256}); look at it again before approving`);
      const store = await ApprovalStore.open(ApprovalStore.pathFor(config.stateDir));
      const { record, notGranted } = approvalFor(
        v.manifest.name,
        v.sha256,
        v.manifest.capabilities,
        config.plugins.grants[v.manifest.name] ?? {},
        new Date(),
        info.path,
      );
      await store.add(record);
      const approved = describeRequest(record.approved);
      deps.logger.info(
        { plugin: p.name, sha256: p.sha256, approved, client: ctx.identity.account, remote: ctx.conn.remoteAddress },
        "plugin.approve: capabilities approved",
      );
      const reloaded = deps.plugins.load ? await deps.plugins.load(info.path) : undefined;
      return { name: p.name, sha256: p.sha256, approved, notGranted: describeRequest(notGranted), status: reloaded?.status ?? info.status };
    } catch (err) {
      if (err instanceof RpcError) throw err;
      throw new RpcError(ErrorCode.PluginError, `cannot approve plugin: ${(err as Error).message}`);
    }
  });

  return methods;
}
