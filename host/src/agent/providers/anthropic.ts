import type Anthropic from "@anthropic-ai/sdk";
import type { ProviderEndpoint } from "../../config/index.js";
import { ErrorCode } from "../../protocol/index.js";
import { ProviderError, toProviderError } from "../errors.js";
import { loadDispatcherFetch } from "./dispatcher-fetch.js";
import { DEFAULT_IDLE_TIMEOUT_MS, IdleWatch } from "./idle.js";
import type { ProviderOptions } from "./options.js";
import type { ChatMessage, ModelEvent, ModelProvider, ModelRequest, StopReason } from "../types.js";
import { parseToolInput } from "./tool-input.js";
import { mapStream } from "../stream-tap.js";

type MessageParam = Anthropic.MessageParam;
type ContentBlockParam = Anthropic.ContentBlockParam;

/** Maps neutral messages onto Anthropic Messages API `messages` (tool results as `tool_result` blocks). */
export function toAnthropicMessages(messages: ChatMessage[]): MessageParam[] {
  return messages.map((m) => ({
    role: m.role,
    content: m.content.map((b): ContentBlockParam => {
      switch (b.type) {
        case "text":
          return { type: "text", text: b.text };
        case "tool_use":
          return { type: "tool_use", id: b.id, name: b.name, input: b.input as Record<string, unknown> };
        case "tool_result":
          return { type: "tool_result", tool_use_id: b.toolUseId, content: b.content, is_error: b.isError };
        case "image":
          // Source: Anthropic Messages API "Vision": {type: "image", source: {type: "base64", media_type, data}}.
          return { type: "image", source: { type: "base64", media_type: b.mime as Anthropic.Base64ImageSource["media_type"], data: b.data } };
      }
    }),
  }));
}

function stopReason(r: string | null | undefined): StopReason {
  switch (r) {
    case "end_turn":
    case "tool_use":
    case "max_tokens":
    case "stop_sequence":
    case "refusal":
      return r;
    default:
      return "other";
  }
}

/**
 * Anthropic Messages API, streaming, through `@anthropic-ai/sdk`. Reads the raw SSE events
 * (`message_start`, `content_block_start/delta/stop` with `text_delta` / `input_json_delta`,
 * `message_delta`, `message_stop`; source: Anthropic "Streaming Messages" docs). A stream that
 * ends without `message_stop` is a ProviderError, never a silent short reply. The idle timeout
 * counts SSE events the SDK yields (it drops `ping` events, so pings do not keep a call alive).
 */
export function createAnthropicProvider(endpoint: ProviderEndpoint, options: ProviderOptions = {}): ModelProvider {
  let client: Promise<Anthropic> | undefined;
  const where = endpoint.baseUrl ?? "https://api.anthropic.com";
  const getClient = () =>
    (client ??= Promise.all([import("@anthropic-ai/sdk"), loadDispatcherFetch()]).then(
      ([{ default: Sdk }, fetch]) =>
        new Sdk({ apiKey: endpoint.apiKey ?? "", baseURL: endpoint.baseUrl ?? null, timeout: endpoint.timeoutMs, maxRetries: 0, fetch }),
    ));

  return {
    name: "anthropic",
    // `mapStream`, not an `async function*`: every SSE event of the call passes here (stream-tap.ts).
    stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
      const tools = new Map<number, { id: string; name: string; json: string }>();
      let stopped = false;
      let reason: StopReason = "other";
      let watch: IdleWatch | undefined;
      let ended = false;
      const open = async () => {
        if (!endpoint.apiKey && !endpoint.baseUrl) {
          throw new ProviderError(ErrorCode.ProviderUnavailable, "provider anthropic has no API key: set ANTHROPIC_API_KEY");
        }
        const sdk = await getClient();
        watch = new IdleWatch({ provider: "anthropic", idleTimeoutMs: request.idleTimeoutMs ?? endpoint.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, signal });
        return sdk.messages.create(
          {
            model: request.model,
            max_tokens: request.maxTokens,
            messages: toAnthropicMessages(request.messages),
            ...(request.system ? { system: request.system } : {}),
            ...(request.tools.length
              ? { tools: request.tools.map((t) => ({ name: t.name, description: t.description, input_schema: t.inputSchema as Anthropic.Tool.InputSchema })) }
              : {}),
            stream: true,
          },
          { signal: watch.signal },
        );
      };
      return mapStream<Anthropic.RawMessageStreamEvent, ModelEvent>(open, {
        map(ev) {
          watch!.touch();
          switch (ev.type) {
            case "message_start":
              return {
                type: "usage",
                inputTokens: ev.message.usage.input_tokens,
                outputTokens: ev.message.usage.output_tokens,
                // Prompt-cache tokens, billed at their own rates (metering, agent/budget/pricing.ts).
                ...(ev.message.usage.cache_read_input_tokens ? { cacheReadTokens: ev.message.usage.cache_read_input_tokens } : {}),
                ...(ev.message.usage.cache_creation_input_tokens ? { cacheWriteTokens: ev.message.usage.cache_creation_input_tokens } : {}),
              };
            case "content_block_start":
              if (ev.content_block.type === "tool_use") tools.set(ev.index, { id: ev.content_block.id, name: ev.content_block.name, json: "" });
              else if (ev.content_block.type === "text" && ev.content_block.text) return { type: "text", delta: ev.content_block.text };
              return undefined;
            case "content_block_delta":
              if (ev.delta.type === "text_delta") return { type: "text", delta: ev.delta.text };
              if (ev.delta.type === "input_json_delta") {
                const t = tools.get(ev.index);
                if (t) t.json += ev.delta.partial_json;
              }
              return undefined;
            case "content_block_stop": {
              const t = tools.get(ev.index);
              if (t === undefined) return undefined;
              tools.delete(ev.index);
              return { type: "tool_use", id: t.id, name: t.name, input: parseToolInput(t.json, "anthropic", t.name) };
            }
            case "message_delta":
              reason = stopReason(ev.delta.stop_reason);
              return {
                type: "usage",
                outputTokens: ev.usage.output_tokens,
                ...(typeof ev.usage.input_tokens === "number" ? { inputTokens: ev.usage.input_tokens } : {}),
              };
            case "message_stop":
              stopped = true;
              return undefined;
            default:
              return undefined;
          }
        },
        end() {
          ended = true;
          if (!stopped) throw new ProviderError(ErrorCode.ProviderError, "provider anthropic: stream ended before message_stop");
          return { type: "stop", reason };
        },
        // Before the watch exists (no key, the SDK's import) the error is the adapter's own, as before.
        error: (err) =>
          watch === undefined ? err : (watch.stopped() ?? toProviderError(err, { provider: "anthropic", endpoint: where, logger: options.logger })),
        // Closed before the stream ended (the consumer stopped, or a failure): cancel the HTTP request.
        dispose: () => watch?.dispose(!ended),
      });
    },
  };
}
