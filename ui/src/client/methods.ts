/**
 * Params and results of the protocol v1 methods (docs/protocol.md), for {@link GatewayClient.call}.
 * Types come from the host's own declarations where it has them (type-only imports: nothing of
 * the host is bundled).
 */
import type { ChatAbortResult, ChatSendResult, StatusResult } from "../../../host/src/protocol/types.js";
import type { SearchHit, SessionEvent, SessionInfo } from "../../../host/src/store/types.js";
import type { PluginInfo } from "../../../host/src/plugins/types.js";
import type { AgentListEntry, ChannelListEntry, LogsTailResult } from "../../../host/src/gateway/methods-ui.js";
import type { DeadLettersListResult, DeadLetterView } from "../../../host/src/gateway/deadletter-methods.js";
import type { ModelRequestView } from "../../../host/src/gateway/model-request-methods.js";
export type { DeadLettersListResult, DeadLetterView, ModelRequestView };

export type {
  ChatAbortResult,
  ChatSendResult,
  StatusResult,
  SearchHit,
  SessionEvent,
  SessionInfo,
  PluginInfo,
  AgentListEntry,
  ChannelListEntry,
  LogsTailResult,
};
export type { ChatEventParams } from "../../../host/src/protocol/types.js";

import type { UsageSummary } from "../../../host/src/agent/budget/summary.js";
export type { UsageSummary };

/** Every method: `[params, result]`. */
export interface Methods {
  ping: [undefined, "pong"];
  status: [undefined, StatusResult];
  "plugin.list": [undefined, PluginInfo[]];
  "plugin.load": [{ path: string }, PluginInfo];
  "plugin.unload": [{ name: string }, PluginInfo];
  "plugin.approve": [{ name: string; sha256: string }, { name: string; sha256: string; approved: string; notGranted: string; status: string }];
  "chat.send": [{ content: string; channel?: string; account?: string; peer?: string; guild?: string; team?: string; idempotencyKey?: string }, ChatSendResult];
  "chat.abort": [{ runId: string } | { sessionKey: string }, ChatAbortResult];
  "chat.history": [{ sessionKey: string; afterSeq?: number; limit?: number }, { sessionKey: string; events: SessionEvent[]; nextAfterSeq?: number }];
  "sessions.list": [
    { agent?: string; channel?: string; peer?: string; cursor?: string; limit?: number } | undefined,
    { sessions: SessionInfo[]; nextCursor?: string },
  ];
  "sessions.reset": [{ sessionKey: string; reason?: string }, { sessionKey: string; reset: boolean; seq?: number }];
  "sessions.delete": [{ sessionKey: string }, { sessionKey: string; deleted: boolean }];
  "sessions.search": [{ query: string; limit?: number; sessionKey?: string }, { hits: SearchHit[] }];
  "usage.summary": [{ sinceMs?: number; by?: string } | undefined, UsageSummary];
  "logs.tail": [{ level?: "trace" | "debug" | "info" | "warn" | "error" | "fatal"; afterSeq?: number; limit?: number } | undefined, LogsTailResult];
  "agents.list": [undefined, AgentListEntry[]];
  "channels.list": [undefined, ChannelListEntry[]];
  "config.reload": [undefined, unknown];
  "events.subscribe": [{ topics: string[]; after?: Record<string, number> }, { topics: string[] }];
  "events.unsubscribe": [{ topics: string[] }, { topics: string[] }];
  "deadletters.list": [{ consumer?: string; limit?: number } | undefined, DeadLettersListResult];
  "deadletters.replay": [{ ids: string[] } | { all: true }, { replayed: { id: string; msgId: string }[] }];
  "deadletters.purge": [{ ids: string[] } | { all: true }, { purged: number }];
  "sessions.request": [{ sessionKey: string; runId: string; call?: number }, ModelRequestView];
}

export type MethodName = keyof Methods;
export type MethodParams<M extends MethodName> = Methods[M][0];
export type MethodResult<M extends MethodName> = Methods[M][1];
