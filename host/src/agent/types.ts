import type { ToolSpec } from "../plugins/index.js";

/** A block of a provider-neutral chat message. Each provider adapter maps these to its own shapes. */
export type ContentBlock =
  | { type: "text"; text: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | { type: "tool_result"; toolUseId: string; content: string; isError: boolean }
  /** An image in a user message: base64 `data` of `mime` (image/jpeg, image/png, image/gif, image/webp). */
  | { type: "image"; mime: string; data: string };

/** An image a channel fetched for the model with a message (not journaled: later turns see its placeholder line). */
export interface ImageInput {
  /** image/jpeg, image/png, image/gif or image/webp (from the bytes' signature). */
  mime: string;
  /** base64 of the bytes. */
  data: string;
  /** Size of the decoded bytes. */
  bytes: number;
}

/** Who wrote a message inside a group, as the channel plugin reported it (host-written, never from the model or the text). */
export interface MessageSender {
  /** Platform user id. */
  id: string;
  /** Display name (the sender's own choice: shown to the model quoted, as data). */
  name?: string;
}

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
  /**
   * Longest silence allowed from the provider (before the first stream event, and between
   * events), ms; over it the call ends with a ProviderStallError. Default: the provider
   * endpoint's `idleTimeoutMs` (the agent's `idle_timeout_ms` overrides it).
   */
  idleTimeoutMs?: number;
}

/**
 * Events a provider adapter yields while a model call streams. `tool_use` is yielded once its
 * input is complete; `usage` may come more than once (the last values win per field);
 * `stop` comes last.
 */
export type ModelEvent =
  | { type: "text"; delta: string }
  | { type: "tool_use"; id: string; name: string; input: unknown }
  | {
      type: "usage";
      inputTokens?: number;
      outputTokens?: number;
      /** Input tokens read from / written to the provider's prompt cache (not in `inputTokens`). */
      cacheReadTokens?: number;
      cacheWriteTokens?: number;
    }
  | { type: "stop"; reason: StopReason }
  | FailoverEvent;

/**
 * A failed attempt of a model call replaced by another (host/src/agent/resilience): the next
 * model of the agent's chain (`from` != `to`, as `provider/model`), or the same model again after
 * it broke mid-answer. `discard`: the failed attempt had already yielded events; every event of
 * this model call before this one is void (its text, its tool calls) and the call starts over.
 * `reason` is a {@link import("./resilience/classify.js").SwitchReason}.
 */
export type FailoverEvent = { type: "failover"; from: string; to: string; reason: string; discard: boolean };

/** A streaming chat model behind one provider's official SDK. */
export interface ModelProvider {
  readonly name: "anthropic" | "openai" | "ollama" | "gemini";
  /**
   * Streams one model call. `signal` cancels the HTTP request (the provider sees the
   * connection close).
   * @throws ProviderError (HTTP error, connection failure, cut stream, provider `error` event);
   *   ProviderStallError (-32000, `data.reason` "idle_timeout") when the provider stays silent
   *   longer than the idle timeout; the signal's reason when `signal` aborts
   */
  stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent>;
}

/** Turn events, in emission order; the gateway forwards them as `chat.event` notifications. */
export type TurnEvent =
  | { type: "text"; data: { delta: string } }
  | { type: "tool_use"; data: { id: string; name: string; input: unknown } }
  | { type: "tool_result"; data: { toolUseId: string; content: string; isError: boolean } }
  | {
      type: "usage";
      /** Tokens of one model call; with metering also who answered and its cost (agent/budget/guard.ts). */
      data: {
        inputTokens: number;
        outputTokens: number;
        cacheReadTokens?: number;
        cacheWriteTokens?: number;
        costUsd?: number;
        provider?: string;
        model?: string;
      };
    }
  | { type: "failover"; data: Omit<FailoverEvent, "type"> }
  | { type: "error"; data: { code: number; message: string } }
  /** A tool call waits for a person's yes (agent/approvals): answer with `approvals.approve|deny {id}` or `approve <id>` on the approver's channel. */
  | { type: "approval_pending"; data: { id: string; tool: string; input: unknown; expiresAt: number } };

/** What a finished turn produced. `usage` sums every model call of the turn (tokens). */
export interface TurnOutcome {
  text: string;
  stopReason: StopReason;
  usage: { inputTokens: number; outputTokens: number };
  /** Model calls made. */
  iterations: number;
}

/**
 * One message an agent sends on its own initiative (the built-in `message_send` tool), already
 * allowed by the host's outbound policy. `channel`/`account`/`peer` name the conversation as in
 * a session key; `thread` is the platform thread to post in (Slack `thread_ts`, Telegram
 * `message_thread_id`); `content` is the text to send.
 */
export interface OutboundTarget {
  channel: string;
  account: string;
  peer: string;
  thread?: string;
  content: string;
}

/**
 * Delivers outbound messages to messaging platforms (the channels service implements it).
 * The runtime calls it only for targets the agent's outbound allowlist (or its own session)
 * allows.
 */
export interface OutboundSender {
  /**
   * Sends one message.
   * @returns the platform's id for the sent message, when it reports one
   * @throws Error with a readable message when the channel is unknown or the platform refuses
   */
  send(target: OutboundTarget, signal?: AbortSignal): Promise<{ platformMessageId?: string }>;
}
