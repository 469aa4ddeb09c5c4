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
export type RpcResponse =
  | { jsonrpc: "2.0"; id: RequestId; result: unknown }
  | { jsonrpc: "2.0"; id: RequestId; error: RpcErrorObject };

/** JSON-RPC 2.0 notification sent by the server. */
export interface RpcNotification {
  jsonrpc: "2.0";
  method: string;
  params: unknown;
}

/** Type of a `chat.event` notification. */
export type ChatEventType = "text" | "tool_use" | "tool_result" | "usage" | "error";

/** Payload of each `chat.event` type. */
export interface ChatEventData {
  text: { delta: string };
  tool_use: { id: string; name: string; input: unknown };
  tool_result: { toolUseId: string; content: string; isError: boolean };
  usage: { inputTokens: number; outputTokens: number };
  error: { code: number; message: string };
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
export interface ChatSendResult {
  runId: string;
  sessionKey: string;
  agentId: string;
  text: string;
  stopReason: string;
  usage: { inputTokens: number; outputTokens: number };
}

/** Result of `status`. */
export interface StatusResult {
  version: string;
  uptimeMs: number;
  transport: "uws" | "ws";
  plugins: number;
  sessions: number;
}
