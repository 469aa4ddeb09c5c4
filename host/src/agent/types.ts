import type { ToolSpec } from "../plugins/types.js";

/** A block of a provider-neutral chat message. Each provider adapter maps these to its own shapes. */
export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; toolUseId: string; content: string; isError: boolean };

/** A provider-neutral chat message. Tool results travel in `user` messages (Anthropic's model). */
export interface ChatMessage {
  role: "user" | "assistant";
  content: ContentBlock[];
}

/** Why a model call stopped, normalized across providers. */
export type StopReason = "end_turn" | "tool_use" | "max_tokens" | "stop_sequence" | "refusal" | "other";

/** One model call. */
export interface ModelRequest {
  model: string;
  system?: string;
  messages: ChatMessage[];
  tools: ToolSpec[];
  /** Max output tokens. */
  maxTokens: number;
}

/**
 * Events a provider adapter yields while a model call streams. `tool_use` is yielded once its
 * input is complete; `usage` may come more than once (the last values win per field);
 * `stop` comes last.
 */
export type ModelEvent =
  | { type: "text"; delta: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "usage"; inputTokens?: number; outputTokens?: number }
  | { type: "stop"; reason: StopReason };

/** A streaming chat model behind one provider's official SDK. */
export interface ModelProvider {
  readonly name: "anthropic" | "openai" | "ollama";
  /**
   * Streams one model call.
   * @throws ProviderError (HTTP error, connection failure, cut stream, provider `error` event)
   */
  stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent>;
}

/** Turn events, in emission order; the gateway forwards them as `chat.event` notifications. */
export type TurnEvent =
  | { type: "text"; data: { delta: string } }
  | { type: "tool_use"; data: { id: string; name: string; input: unknown } }
  | { type: "tool_result"; data: { toolUseId: string; content: string; isError: boolean } }
  | { type: "usage"; data: { inputTokens: number; outputTokens: number } }
  | { type: "error"; data: { code: number; message: string } };

/** What a finished turn produced. `usage` sums every model call of the turn (tokens). */
export interface TurnOutcome {
  text: string;
  stopReason: StopReason;
  usage: { inputTokens: number; outputTokens: number };
  /** Model calls made. */
  iterations: number;
}
