import { randomUUID } from "node:crypto";
import { isAbsolute } from "node:path";
import type { Logger } from "pino";
import type { AgentRuntime } from "../agent/runtime.js";
import type { TurnEvent } from "../agent/types.js";
import { z } from "zod";
import { ErrorCode, RpcError } from "../protocol/errors.js";
import { NoParamsSchema, parseChatSendParams, parseParams } from "../protocol/params.js";
import { toErrorObject } from "../protocol/jsonrpc.js";
import type { ChatEventParams, ChatSendResult, StatusResult } from "../protocol/index.js";
import type { PluginInfo, PluginManager, PluginRegistry } from "../plugins/types.js";
import type { Router } from "../router/types.js";
import { VERSION } from "../version.js";
import type { MethodHandler } from "./rpc.js";
import type { TransportName } from "./types.js";

export type { PluginInfo };

const PluginLoadParamsSchema = z.object({
  path: z
    .string({ error: (i) => (i.input === undefined ? "path is required" : "path must be a string") })
    .min(1, "path must not be empty")
    .refine((p) => isAbsolute(p), "path must be absolute")
    .refine((p) => p.endsWith(".wasm"), "path must name a .wasm file"),
});
const PluginUnloadParamsSchema = z.object({
  name: z.string({ error: (i) => (i.input === undefined ? "name is required" : "name must be a string") }).min(1, "name must not be empty"),
});

/** What the protocol methods reach into. */
export interface MethodDeps {
  router: Router;
  runtime: Pick<AgentRuntime, "run" | "sessionCount">;
  /** `load`/`unload` are optional: without them `plugin.load` / `plugin.unload` answer -32007. */
  plugins: Pick<PluginRegistry, "list"> & Partial<PluginManager>;
  logger: Logger;
  transport: () => TransportName;
  /** `performance.now()` at process start, ms. */
  startedAt: number;
}

/**
 * The method table of wire protocol v1 (docs/protocol.md): `ping`, `status`, `plugin.list`,
 * `plugin.load`, `plugin.unload`, `chat.send`.
 */
export function createMethods(deps: MethodDeps): Map<string, MethodHandler> {
  const methods = new Map<string, MethodHandler>();

  methods.set("ping", (params) => {
    parseParams(NoParamsSchema, params);
    return "pong";
  });

  methods.set("status", (params): StatusResult => {
    parseParams(NoParamsSchema, params);
    return {
      version: VERSION,
      uptimeMs: Math.round(performance.now() - deps.startedAt),
      transport: deps.transport(),
      plugins: deps.plugins.list().filter((p) => p.status !== "error").length,
      sessions: deps.runtime.sessionCount(),
    };
  });

  methods.set("plugin.list", (params): PluginInfo[] => {
    parseParams(NoParamsSchema, params);
    return deps.plugins.list();
  });

  // `plugin.load {path}`: loads or reloads a .wasm file; result: its plugin.list entry.
  methods.set("plugin.load", async (params): Promise<PluginInfo> => {
    const p = parseParams(PluginLoadParamsSchema, params);
    const load = deps.plugins.load;
    if (load === undefined) throw new RpcError(ErrorCode.PluginError, "this gateway cannot load plugins at run time");
    try {
      return await load(p.path);
    } catch (err) {
      throw new RpcError(ErrorCode.PluginError, `cannot load plugin: ${(err as Error).message}`);
    }
  });

  // `plugin.unload {name}`: unloads a plugin by name; result: its plugin.list entry as it was.
  methods.set("plugin.unload", async (params): Promise<PluginInfo> => {
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
    const p = parseChatSendParams(params);
    const route = deps.router.resolve({ channel: p.channel, account: p.account, peer: p.peer, guild: p.guild, team: p.team });
    const runId = randomUUID();
    let seq = 0;
    const emit = (ev: TurnEvent) => {
      const event: ChatEventParams = { requestId: ctx.requestId, runId, sessionKey: route.sessionKey, seq: seq++, type: ev.type, data: ev.data };
      ctx.notify("chat.event", event);
    };
    const started = performance.now();
    try {
      const out = await deps.runtime.run({ agentId: route.agentId, sessionKey: route.sessionKey, content: p.content, runId }, emit);
      deps.logger.debug(
        { runId, sessionKey: route.sessionKey, agentId: route.agentId, matchedBy: route.matchedBy, ms: +(performance.now() - started).toFixed(2), iterations: out.iterations, usage: out.usage },
        "turn finished",
      );
      return { runId, sessionKey: route.sessionKey, agentId: route.agentId, text: out.text, stopReason: out.stopReason, usage: out.usage };
    } catch (err) {
      const error = toErrorObject(err);
      deps.logger.warn({ runId, sessionKey: route.sessionKey, code: error.code, error: error.message }, "turn failed");
      emit({ type: "error", data: { code: error.code, message: error.message } });
      throw err;
    }
  });

  return methods;
}
