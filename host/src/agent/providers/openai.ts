import type OpenAI from "openai";
import type { ProviderEndpoint } from "../../config/index.js";
import { ErrorCode } from "../../protocol/index.js";
import { ProviderError, toProviderError } from "../errors.js";
import { loadDispatcherFetch } from "./dispatcher-fetch.js";
import { DEFAULT_IDLE_TIMEOUT_MS, IdleWatch } from "./idle.js";
import type { ProviderOptions } from "./options.js";
import type { ChatMessage, ModelEvent, ModelProvider, ModelRequest, StopReason } from "../types.js";
import { parseToolInput } from "./tool-input.js";
import { expandStream } from "../stream-tap.js";

type Msg = OpenAI.Chat.ChatCompletionMessageParam;

/**
 * Maps neutral messages onto Chat Completions messages: assistant `tool_calls` with JSON-string
 * `arguments`, and each tool result as its own `role:"tool"` message with `tool_call_id`.
 * A failed tool's content is prefixed `Error: ` since the format has no error flag.
 */
export function toOpenAIMessages(system: string | undefined, messages: ChatMessage[]): Msg[] {
  const out: Msg[] = system ? [{ role: "system", content: system }] : [];
  for (const m of messages) {
    if (m.role === "assistant") {
      const text = m.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("");
      const calls = m.content.flatMap((b) =>
        b.type === "tool_use" ? [{ id: b.id, type: "function" as const, function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } }] : [],
      );
      out.push({ role: "assistant", content: text || null, ...(calls.length ? { tool_calls: calls } : {}) });
      continue;
    }
    const text = m.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("");
    for (const b of m.content) {
      if (b.type === "tool_result") out.push({ role: "tool", tool_call_id: b.toolUseId, content: b.isError ? `Error: ${b.content}` : b.content });
    }
    const images = m.content.flatMap((b) => (b.type === "image" ? [b] : []));
    if (images.length > 0) {
      // Source: OpenAI Chat Completions "Images and vision": user content parts, an image as
      // {type: "image_url", image_url: {url: "data:<mime>;base64,<data>"}}.
      const parts: OpenAI.Chat.ChatCompletionContentPart[] = [];
      for (const b of m.content) {
        if (b.type === "text") parts.push({ type: "text", text: b.text });
        else if (b.type === "image") parts.push({ type: "image_url", image_url: { url: `data:${b.mime};base64,${b.data}` } });
      }
      out.push({ role: "user", content: parts });
    } else if (text) out.push({ role: "user", content: text });
  }
  return out;
}

function stopReason(r: string | null | undefined): StopReason {
  switch (r) {
    case "stop":
      return "end_turn";
    case "tool_calls":
    case "function_call":
      return "tool_use";
    case "length":
      return "max_tokens";
    case "content_filter":
      return "refusal";
    default:
      return "other";
  }
}

/**
 * The `usage` event of a chunk's `usage`. OpenAI counts prompt-cache hits inside `prompt_tokens`
 * and reports them again as `prompt_tokens_details.cached_tokens` (a subset, billed at the
 * "cached input" rate; source: the `openai` SDK's `CompletionUsage` type and platform.openai.com
 * docs, "Prompt caching"). exoclaw's usage counts cache tokens apart from input tokens (as
 * Anthropic reports them), so they are moved out: `inputTokens = prompt_tokens - cached_tokens`,
 * `cacheReadTokens = cached_tokens`. OpenAI-compatible servers that leave the details out give
 * no cache tokens.
 */
export function usageEvent(u: { prompt_tokens: number; completion_tokens: number; prompt_tokens_details?: { cached_tokens?: number } | null }): ModelEvent {
  const cached = Math.min(Math.max(0, u.prompt_tokens_details?.cached_tokens ?? 0), u.prompt_tokens);
  return {
    type: "usage",
    inputTokens: u.prompt_tokens - cached,
    outputTokens: u.completion_tokens,
    ...(cached > 0 ? { cacheReadTokens: cached } : {}),
  };
}

/**
 * OpenAI Chat Completions, streaming, through the `openai` SDK — the API every
 * OpenAI-compatible server speaks. Tool calls arrive as `delta.tool_calls[]` fragments keyed by
 * `index` (id and name first, `function.arguments` in pieces); usage comes in a final chunk with
 * empty `choices` when `stream_options.include_usage` is set (source: OpenAI API reference,
 * "The chat completion chunk object"). A stream without a `finish_reason` is a ProviderError.
 * The idle timeout counts chunks the SDK yields.
 */
export function createOpenAIProvider(endpoint: ProviderEndpoint, options: ProviderOptions = {}): ModelProvider {
  let client: Promise<OpenAI> | undefined;
  const where = endpoint.baseUrl ?? "https://api.openai.com/v1";
  const getClient = () =>
    (client ??= Promise.all([import("openai"), loadDispatcherFetch()]).then(
      ([{ default: Sdk }, fetch]) =>
        new Sdk({ apiKey: endpoint.apiKey ?? "", baseURL: endpoint.baseUrl ?? null, timeout: endpoint.timeoutMs, maxRetries: 0, fetch }),
    ));

  return {
    name: "openai",
    // `expandStream`, not an `async function*`: every chunk of the call passes here (stream-tap.ts).
    stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
      const calls = new Map<number, { id: string; name: string; args: string }>();
      let finish: string | null | undefined;
      let watch: IdleWatch | undefined;
      let ended = false;
      const open = async () => {
        if (!endpoint.apiKey && !endpoint.baseUrl) {
          throw new ProviderError(ErrorCode.ProviderUnavailable, "provider openai has no API key: set OPENAI_API_KEY");
        }
        const sdk = await getClient();
        watch = new IdleWatch({ provider: "openai", idleTimeoutMs: request.idleTimeoutMs ?? endpoint.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, signal });
        return sdk.chat.completions.create(
          {
            model: request.model,
            max_completion_tokens: request.maxTokens,
            messages: toOpenAIMessages(request.system, request.messages),
            ...(request.tools.length
              ? {
                  tools: request.tools.map((t) => ({
                    type: "function" as const,
                    function: { name: t.name, description: t.description, parameters: t.inputSchema },
                  })),
                }
              : {}),
            stream: true,
            stream_options: { include_usage: true },
          },
          { signal: watch.signal },
        );
      };
      return expandStream<OpenAI.Chat.ChatCompletionChunk, ModelEvent>(open, {
        map(chunk, emit) {
          watch!.touch();
          if (chunk.usage) emit(usageEvent(chunk.usage));
          const choice = chunk.choices[0];
          if (!choice) return;
          if (choice.delta?.content) emit({ type: "text", delta: choice.delta.content });
          for (const tc of choice.delta?.tool_calls ?? []) {
            const call = calls.get(tc.index) ?? { id: "", name: "", args: "" };
            if (tc.id) call.id = tc.id;
            if (tc.function?.name) call.name += tc.function.name;
            if (tc.function?.arguments) call.args += tc.function.arguments;
            calls.set(tc.index, call);
          }
          if (choice.finish_reason) finish = choice.finish_reason;
        },
        end(emit) {
          ended = true;
          if (!finish) throw new ProviderError(ErrorCode.ProviderError, "provider openai: stream ended without a finish_reason");
          for (const [index, c] of [...calls.entries()].sort((a, b) => a[0] - b[0])) {
            emit({ type: "tool_use", id: c.id || `call_${index}`, name: c.name, input: parseToolInput(c.args, "openai", c.name) });
          }
          emit({ type: "stop", reason: calls.size ? "tool_use" : stopReason(finish) });
        },
        // Before the watch exists (no key, the SDK's import) the error is the adapter's own.
        // An aborted SDK stream may end early without an error: the abort's own reason is the answer.
        error: (err) =>
          watch === undefined ? err : (watch.stopped() ?? toProviderError(err, { provider: "openai", endpoint: where, logger: options.logger })),
        // Closed before the stream ended (the consumer stopped, or a failure): cancel the HTTP request.
        dispose: () => watch?.dispose(!ended),
      });
    },
  };
}
