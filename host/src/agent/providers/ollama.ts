import type { ChatResponse, Message, Tool } from "ollama";
import type { ProviderEndpoint } from "../../config/index.js";
import { ErrorCode } from "../../protocol/index.js";
import { ProviderError, toProviderError } from "../errors.js";
import { DEFAULT_IDLE_TIMEOUT_MS, IdleWatch } from "./idle.js";
import type { ProviderOptions } from "./options.js";
import type { ChatMessage, ModelEvent, ModelProvider, ModelRequest, StopReason } from "../types.js";
import { expandStream } from "../stream-tap.js";

/**
 * Maps neutral messages onto Ollama `/api/chat` messages: assistant `tool_calls` with object
 * `arguments`, and each tool result as a `role:"tool"` message naming the tool (`tool_name`).
 */
export function toOllamaMessages(system: string | undefined, messages: ChatMessage[]): Message[] {
  const out: Message[] = system ? [{ role: "system", content: system }] : [];
  const toolNames = new Map<string, string>();
  for (const m of messages) {
    const text = m.content.flatMap((b) => (b.type === "text" ? [b.text] : [])).join("");
    if (m.role === "assistant") {
      const calls = m.content.flatMap((b) => {
        if (b.type !== "tool_use") return [];
        toolNames.set(b.id, b.name);
        return [{ function: { name: b.name, arguments: (b.input ?? {}) as Record<string, unknown> } }];
      });
      out.push({ role: "assistant", content: text, ...(calls.length ? { tool_calls: calls } : {}) });
      continue;
    }
    for (const b of m.content) {
      if (b.type !== "tool_result") continue;
      const name = toolNames.get(b.toolUseId);
      out.push({ role: "tool", content: b.isError ? `Error: ${b.content}` : b.content, ...(name ? { tool_name: name } : {}) });
    }
    // Source: Ollama API "Chat request (with images)": `images`, a list of base64 strings, on the message.
    const images = m.content.flatMap((b) => (b.type === "image" ? [b.data] : []));
    if (text || images.length > 0) out.push({ role: "user", content: text, ...(images.length > 0 ? { images } : {}) });
  }
  return out;
}

/**
 * Ollama `/api/chat`, streaming (NDJSON), through the `ollama` SDK. Ollama sends tool calls
 * whole, with object `arguments` and no id, so ids are synthesized per turn; the final line
 * has `done: true` with `prompt_eval_count` / `eval_count` (source: Ollama API docs, "Generate
 * a chat completion"). A stream without `done: true` is a ProviderError.
 *
 * The SDK's `chat` takes no abort signal (its `abort()` would cancel every call of a shared
 * client), so each call gets its own light client whose `fetch` carries the call's signal: an
 * abort or the idle timeout then cancels the request before the headers as well as mid-stream.
 * Connections are pooled by Node's global fetch dispatcher, not by the client. The idle timeout
 * counts NDJSON lines the SDK yields; Ollama answers only after loading the model, so a cold load
 * of a large model counts against it.
 */
export function createOllamaProvider(endpoint: ProviderEndpoint, options: ProviderOptions = {}): ModelProvider {
  let sdkModule: Promise<typeof import("ollama")> | undefined;
  const host = endpoint.baseUrl ?? "http://127.0.0.1:11434";
  const clientFor = (Sdk: typeof import("ollama").Ollama, signal: AbortSignal) => {
    const linked: typeof fetch = (input, init) => fetch(input, { ...init, signal: init?.signal ? AbortSignal.any([init.signal, signal]) : signal });
    return new Sdk({ host, fetch: linked });
  };
  let callSeq = 0;

  return {
    name: "ollama",
    // `expandStream`, not an `async function*`: every NDJSON line of the call passes here (stream-tap.ts).
    stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
      let watch: IdleWatch | undefined;
      let ended = false;
      let done = false;
      let toolCalls = 0;
      let reason: StopReason = "other";
      const open = async () => {
        const { Ollama: Sdk } = await (sdkModule ??= import("ollama"));
        watch = new IdleWatch({ provider: "ollama", idleTimeoutMs: request.idleTimeoutMs ?? endpoint.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, signal });
        const tools: Tool[] = request.tools.map((t) => ({
          type: "function",
          function: { name: t.name, description: t.description, parameters: t.inputSchema as Tool["function"]["parameters"] },
        }));
        watch.signal.throwIfAborted();
        const sdk = clientFor(Sdk, watch.signal);
        return sdk.chat({
          model: request.model,
          messages: toOllamaMessages(request.system, request.messages),
          ...(tools.length ? { tools } : {}),
          options: { num_predict: request.maxTokens },
          stream: true,
        });
      };
      return expandStream<ChatResponse, ModelEvent>(open, {
        map(chunk, emit) {
          watch!.touch();
          if (chunk.message?.content) emit({ type: "text", delta: chunk.message.content });
          for (const tc of chunk.message?.tool_calls ?? []) {
            toolCalls++;
            emit({ type: "tool_use", id: `ollama_call_${++callSeq}`, name: tc.function.name, input: tc.function.arguments ?? {} });
          }
          if (chunk.done) {
            done = true;
            reason = toolCalls ? "tool_use" : chunk.done_reason === "length" ? "max_tokens" : chunk.done_reason === "stop" ? "end_turn" : "other";
            emit({ type: "usage", inputTokens: chunk.prompt_eval_count ?? 0, outputTokens: chunk.eval_count ?? 0 });
          }
        },
        end(emit) {
          ended = true;
          if (!done) throw new ProviderError(ErrorCode.ProviderError, "provider ollama: stream ended before done:true");
          emit({ type: "stop", reason });
        },
        // Before the watch exists (the SDK's import) the error is the adapter's own.
        error: (err) => (watch === undefined ? err : (watch.stopped() ?? toProviderError(err, { provider: "ollama", endpoint: host, logger: options.logger }))),
        // Closed before the stream ended (the consumer stopped, or a failure): cancel the HTTP request.
        dispose: () => watch?.dispose(!ended),
      });
    },
  };
}
