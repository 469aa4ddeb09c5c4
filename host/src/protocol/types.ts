/** JSON-RPC 2.0 request id: a string, a number, or null. */
export type RequestId = string | number | null;

/** How a frame was encoded; replies and notifications use the request's encoding. */
export type Encoding = "json" | "msgpack";

/** A valid JSON-RPC 2.0 request (`id` present) or notification (`id` absent). */
export interface RpcRequest {
  jsonrpc: "2.0";
  id?: RequestId;
  method: string;
  params?: unknown;
}

/** JSON-RPC 2.0 error object. */
export interface RpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** JSON-RPC 2.0 response. */
export type RpcResponse = { jsonrpc: "2.0"; id: RequestId; result: unknown } | { jsonrpc: "2.0"; id: RequestId; error: RpcErrorObject };

/** JSON-RPC 2.0 notification sent by the server. */
export interface RpcNotification {
  jsonrpc: "2.0";
  method: string;
  params: unknown;
}

/** Type of a `chat.event` notification. */
export type ChatEventType = "text" | "tool_use" | "tool_result" | "usage" | "failover" | "error" | "approval_pending";

/** Payload of each `chat.event` type. */
export interface ChatEventData {
  text: { delta: string };
  tool_use: { id: string; name: string; input: unknown };
  tool_result: { toolUseId: string; content: string; isError: boolean };
  usage: { inputTokens: number; outputTokens: number };
  /**
   * A model call moved to another model of the agent's chain, or started over after breaking
   * mid-answer (docs/protocol.md, "Failover"). `discard`: drop the text and tool calls received
   * since this model call began (since the last `usage` or `tool_result` event); the
   * replacement's text follows.
   */
  failover: { from: string; to: string; reason: string; discard: boolean };
  error: { code: number; message: string };
  /** A tool call of the turn waits for a person's yes (docs/hooks.md, "Approvals"); `expiresAt` ms since the epoch. */
  approval_pending: { id: string; tool: string; input: unknown; expiresAt: number };
}

/** Params of a `chat.event` notification; `seq` counts from 0 per run. */
export interface ChatEventParams<T extends ChatEventType = ChatEventType> {
  requestId: RequestId;
  runId: string;
  sessionKey: string;
  seq: number;
  type: T;
  data: ChatEventData[T];
}

/** Params of `chat.send`. */
export interface ChatSendParams {
  content: string;
  channel: string;
  account: string;
  peer: string;
  guild?: string;
  team?: string;
}

/** Result of `chat.send`: the turn's outcome. */
/**
 * Result of `chat.abort`: the run ids it stopped (the running turn and, for a `runId` that was
 * still queued, that message); empty when nothing matched (the turn already ended).
 */
export interface ChatAbortResult {
  aborted: string[];
}

export interface ChatSendResult {
  runId: string;
  sessionKey: string;
  agentId: string;
  text: string;
  stopReason: string;
  usage: { inputTokens: number; outputTokens: number };
  /** Set when a repeated `idempotencyKey` returned the stored outcome of an earlier turn. */
  replayed?: true;
}

/** Result of `status`. */
export interface StatusResult {
  version: string;
  uptimeMs: number;
  transport: "uws" | "ws";
  plugins: number;
  sessions: number;
  /** Counters per channel, in config order (when channels are configured). */
  channels?: Record<string, ChannelCounters>;
  /** The bus's health; null while it is not open (when the gateway has a bus). */
  bus?: BusStatus | null;
  /** MCP servers (`[mcp.servers.*]`): state, approval, tools offered, calls, tool errors, restarts; absent when none is configured. */
  mcp?: { name: string; state: string; approval: string; tools: number; calls: number; errors: number; restarts: number }[];
  /** The gateway's process id. */
  pid: number;
  /** Every agent with its provider and model, in config order (when the gateway reports them). */
  agents?: StatusAgent[];
  /** Per plugin file: status and call counters since load (the subset of `plugin.list` an operator watches). */
  pluginStats: StatusPlugin[];
  /** The session store URL without credentials (when the gateway reports it). */
  store?: string;
}

/** One agent in `status`. */
export interface StatusAgent {
  id: string;
  provider: string;
  model: string;
  /** Whether it is `default_agent`. */
  default: boolean;
}

/** One plugin in `status`: counters since load (kept across reloads of the same file). */
export interface StatusPlugin {
  name: string;
  kind: string | null;
  status: string;
  /** Tool calls finished (aborted ones are not counted). */
  calls: number;
  errors: number;
  /** Median and 99th percentile call duration over the last 512 calls, ms (0 before any call). */
  p50Ms: number;
  p99Ms: number;
}

/** Per-channel counters (the `status` method shows them). */
export interface ChannelCounters {
  /** Messages the plugin produced (well-formed or not). */
  received: number;
  /** Messages journaled for a turn (including redeliveries answered by their first turn). */
  accepted: number;
  /** Messages dropped: strangers, over the limits, malformed, or refused by the runtime. */
  refused: number;
  /** Of `refused`: messages the plugin produced with a bad shape. */
  malformed: number;
  /** Replies delivered to the platform. */
  answered: number;
  /**
   * Outbound sends given up: agent-initiated sends that failed after every retry, and replies
   * dead-lettered by the outbox (a permanent failure; logged at error).
   */
  sendFailures: number;
  /** Reply sends that failed for a transient reason and are retried (each failed attempt counts). */
  sendRetries: number;
  /** Webhook requests the plugin answered 401 (bad signature). */
  badSignature: number;
  /** Webhook requests answered 401 by the host: none of the plugin's declared signature headers (the plugin was not called). */
  missingSignature: number;
  /** Webhook requests answered 404: the URL's account is not in the channel's `accounts`. */
  unknownAccount: number;
  /** Webhook requests answered 429: their client address was over its `[gateway.webhooks]` rate. */
  throttled: number;
  /** Webhook requests answered 503 before their body was read: the in-flight budget was full (or the plugin not loaded). */
  overloaded: number;
}

/** Health of a bus, for `status` and logs (the bus's `status()`). */
export interface BusStatus {
  kind: "memory" | "nats";
  /** NATS: connected to a server; memory: always true. */
  connected: boolean;
  /** Messages in the disk spool waiting for NATS. */
  spooled: number;
  /** NATS: partitions this process holds leases on, per durable consumer. */
  partitions?: Record<string, number[]>;
  lastError?: string;
}
