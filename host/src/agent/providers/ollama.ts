import type { Message, Ollama, Tool } from "ollama";
import type { ProviderEndpoint } from "../../config/types.js";
import { ErrorCode } from "../../protocol/errors.js";
import { ProviderError, toProviderError } from "../errors.js";
import type { ProviderOptions } from "./options.js";
import type { ChatMessage, ModelEvent, ModelProvider, ModelRequest, StopReason } from "../types.js";

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
    if (text) out.push({ role: "user", content: text });
  }
  return out;
}

/**
 * Ollama `/api/chat`, streaming (NDJSON), through the `ollama` SDK. Ollama sends tool calls
 * whole, with object `arguments` and no id, so ids are synthesized per turn; the final line
 * has `done: true` with `prompt_eval_count` / `eval_count` (source: Ollama API docs, "Generate
 * a chat completion"). A stream without `done: true` is a ProviderError.
 */
export function createOllamaProvider(endpoint: ProviderEndpoint, options: ProviderOptions = {}): ModelProvider {
  let client: Promise<Ollama> | undefined;
  const host = endpoint.baseUrl ?? "http://127.0.0.1:11434";
  const getClient = () => (client ??= import("ollama").then(({ Ollama: Sdk }) => new Sdk({ host })));
  let callSeq = 0;

  return {
    name: "ollama",
    async *stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
      const sdk = await getClient();
      let done = false;
      let toolCalls = 0;
      let reason: StopReason = "other";
      const tools: Tool[] = request.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.inputSchema as Tool["function"]["parameters"] },
      }));
      try {
        if (signal.aborted) throw signal.reason;
        const stream = await sdk.chat({
          model: request.model,
          messages: toOllamaMessages(request.system, request.messages),
          ...(tools.length ? { tools } : {}),
          options: { num_predict: request.maxTokens },
          stream: true,
        });
        const onAbort = () => stream.abort();
        signal.addEventListener("abort", onAbort, { once: true });
        try {
          for await (const chunk of stream) {
            if (chunk.message?.content) yield { type: "text", delta: chunk.message.content };
            for (const tc of chunk.message?.tool_calls ?? []) {
              toolCalls++;
              yield { type: "tool_use", id: `ollama_call_${++callSeq}`, name: tc.function.name, input: tc.function.arguments ?? {} };
            }
            if (chunk.done) {
              done = true;
              reason = toolCalls ? "tool_use" : chunk.done_reason === "length" ? "max_tokens" : chunk.done_reason === "stop" ? "end_turn" : "other";
              yield { type: "usage", inputTokens: chunk.prompt_eval_count ?? 0, outputTokens: chunk.eval_count ?? 0 };
            }
          }
        } finally {
          signal.removeEventListener("abort", onAbort);
        }
        if (!done) throw new ProviderError(ErrorCode.ProviderError, "provider ollama: stream ended before done:true");
        yield { type: "stop", reason };
      } catch (err) {
        if (signal.aborted) throw signal.reason;
        throw toProviderError(err, { provider: "ollama", endpoint: host, logger: options.logger });
      }
    },
  };
}
