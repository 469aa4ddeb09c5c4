import type { Content, GenerateContentConfig, GenerateContentResponse, GoogleGenAI, Part } from "@google/genai";
import type { ProviderEndpoint } from "../../config/index.js";
import { ErrorCode } from "../../protocol/index.js";
import { ProviderError, toProviderError } from "../errors.js";
import { DEFAULT_IDLE_TIMEOUT_MS, IdleWatch } from "./idle.js";
import type { ProviderOptions } from "./options.js";
import type { ChatMessage, ModelEvent, ModelProvider, ModelRequest, StopReason } from "../types.js";
import { expandStream } from "../stream-tap.js";

/** Where the Gemini API is reached when no base URL is configured (the SDK's own default). */
export const GEMINI_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com";

/**
 * Prefix of the tool call ids this adapter makes up: the Gemini API may send a `functionCall`
 * without `id` (source: Gemini API reference, `FunctionCall.id` is optional), and an id it never
 * issued must not be sent back in the matching `functionResponse`.
 */
const SYNTHETIC_ID = "gemini_call_";

/**
 * Maps neutral messages onto Gemini `contents` (source: Gemini API reference, "Content" and
 * "Function calling"): roles `user` / `model`; assistant tool calls as `functionCall {id?, name,
 * args}` parts; each tool result as a `functionResponse {id?, name, response}` part in a `user`
 * turn, `response` being `{output}` or, for a failed tool, `{error}` (the keys the API reads:
 * `FunctionResponse.response` in the SDK's types). Gemini matches responses by `name` (and `id`
 * when the call had one), so the name comes from the call earlier in `messages`.
 */
export function toGeminiContents(messages: ChatMessage[]): Content[] {
  const toolNames = new Map<string, string>();
  return messages.map((m): Content => {
    const parts = m.content.map((b): Part => {
      switch (b.type) {
        case "text":
          return { text: b.text };
        case "tool_use":
          toolNames.set(b.id, b.name);
          return { functionCall: { ...ownId(b.id), name: b.name, args: (b.input ?? {}) as Record<string, unknown> } };
        case "tool_result":
          return {
            functionResponse: {
              ...ownId(b.toolUseId),
              name: toolNames.get(b.toolUseId) ?? "unknown",
              response: b.isError ? { error: b.content } : { output: b.content },
            },
          };
        case "image":
          // Source: Gemini API "Image understanding", inline data: {inlineData: {mimeType, data (base64)}}.
          return { inlineData: { mimeType: b.mime, data: b.data } };
      }
    });
    return { role: m.role === "assistant" ? "model" : "user", parts };
  });
}

function ownId(id: string): { id?: string } {
  return id.startsWith(SYNTHETIC_ID) ? {} : { id };
}

/** Gemini `finishReason` (source: Gemini API reference, "FinishReason") onto the neutral stop reason. */
function stopReason(r: string | undefined): StopReason {
  switch (r) {
    case "STOP":
      return "end_turn";
    case "MAX_TOKENS":
      return "max_tokens";
    case "SAFETY":
    case "RECITATION":
    case "BLOCKLIST":
    case "PROHIBITED_CONTENT":
    case "SPII":
      return "refusal";
    default:
      return "other";
  }
}

/**
 * What the Gemini API said in an error body `{error: {code, message, status, details[]}}`
 * (source: Gemini API "Troubleshooting" and google.rpc.Status / google.rpc.RetryInfo; the SDK's
 * `ApiError` carries the HTTP status in `status` and the body, as JSON text, in `message`):
 * `type`, the `ErrorInfo.reason` when there is one (`API_KEY_INVALID`), else the canonical
 * `status` (`RESOURCE_EXHAUSTED`); `retryAfterSeconds`, a `RetryInfo.retryDelay` ("37s") — where
 * Gemini says when to come back instead of a `Retry-After` header. Empty for other errors.
 */
export function geminiErrorFacts(err: unknown): { type?: string; retryAfterSeconds?: number } {
  if ((err as Error)?.name !== "ApiError") return {};
  const text = (err as Error).message;
  // A stream error event is reported as `got status: X. {json}`.
  const json = text.slice(text.indexOf("{"));
  try {
    const body = JSON.parse(json) as { error?: { status?: unknown; details?: { reason?: unknown; retryDelay?: unknown }[] } };
    const details = Array.isArray(body.error?.details) ? body.error.details : [];
    const reason = details.find((d) => typeof d?.reason === "string")?.reason;
    const status = body.error?.status;
    const delay = details.find((d) => typeof d?.retryDelay === "string")?.retryDelay as string | undefined;
    const seconds = delay !== undefined && /^\d+(\.\d+)?s$/.test(delay) ? Number(delay.slice(0, -1)) : undefined;
    const type = typeof reason === "string" ? reason : typeof status === "string" ? status : undefined;
    return { ...(type !== undefined ? { type } : {}), ...(seconds !== undefined ? { retryAfterSeconds: seconds } : {}) };
  } catch {
    return {};
  }
}

/**
 * Gemini API `models/{model}:streamGenerateContent?alt=sse`, through Google's official
 * `@google/genai` SDK (`models.generateContentStream`). Each SSE `data:` line is a whole
 * `GenerateContentResponse`: `candidates[0].content.parts[]` carry text deltas and whole
 * `functionCall`s (several in one answer for parallel calls), `finishReason` closes the
 * candidate, and `usageMetadata` (`promptTokenCount`, `candidatesTokenCount`, plus
 * `thoughtsTokenCount` for thinking models, counted here as output) is the running total of the call (sources: Gemini API reference "Generating content" and "Function calling";
 * the SDK's `processStreamResponse` in node_modules/@google/genai). The key goes in the
 * `x-goog-api-key` header. A stream without a `finishReason` is a ProviderError, never a silent
 * short reply; an error event in the stream is an `ApiError` like an HTTP error.
 *
 * The client is made with the key (never the SDK's own env lookup or Google Cloud credentials),
 * `vertexai: false`, no `retryOptions` (no SDK retries, like `maxRetries: 0` elsewhere), and each
 * call turns off automatic function calling and automatic continuation, so the host's turn loop
 * runs the tools and a cut stream surfaces as an error. The SDK's `timeout` bounds the whole call,
 * body included (unlike the other SDKs, which stop it at the headers); the idle timeout counts
 * the chunks the SDK yields.
 *
 * Limit: Gemini 3 models send `thoughtSignature` with function calls and ask for it back; the
 * neutral history has no field for it, so those models may refuse the second call of a tool turn.
 */
export function createGeminiProvider(endpoint: ProviderEndpoint, options: ProviderOptions = {}): ModelProvider {
  let client: Promise<GoogleGenAI> | undefined;
  const where = endpoint.baseUrl ?? GEMINI_DEFAULT_BASE_URL;
  const getClient = () =>
    (client ??= import("@google/genai").then(
      ({ GoogleGenAI: Sdk }) =>
        new Sdk({
          apiKey: endpoint.apiKey ?? "",
          vertexai: false,
          httpOptions: { ...(endpoint.baseUrl ? { baseUrl: endpoint.baseUrl } : {}), timeout: endpoint.timeoutMs },
        }),
    ));
  let callSeq = 0;

  return {
    name: "gemini",
    // `expandStream`, not an `async function*`: every chunk of the call passes here (stream-tap.ts).
    stream(request: ModelRequest, signal: AbortSignal): AsyncIterable<ModelEvent> {
      let watch: IdleWatch | undefined;
      let ended = false;
      let finish: string | undefined;
      let toolCalls = 0;
      const open = async () => {
        if (!endpoint.apiKey && !endpoint.baseUrl) {
          throw new ProviderError(ErrorCode.ProviderUnavailable, "provider gemini has no API key: set GEMINI_API_KEY (or GOOGLE_API_KEY)");
        }
        const sdk = await getClient();
        watch = new IdleWatch({ provider: "gemini", idleTimeoutMs: request.idleTimeoutMs ?? endpoint.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS, signal });
        const config: GenerateContentConfig = {
          abortSignal: watch.signal,
          maxOutputTokens: request.maxTokens,
          automaticFunctionCalling: { disable: true },
          automaticContinuation: false,
          ...(request.system ? { systemInstruction: request.system } : {}),
          ...(request.tools.length
            ? {
                tools: [
                  { functionDeclarations: request.tools.map((t) => ({ name: t.name, description: t.description, parametersJsonSchema: t.inputSchema })) },
                ],
              }
            : {}),
        };
        watch.signal.throwIfAborted();
        return sdk.models.generateContentStream({ model: request.model, contents: toGeminiContents(request.messages), config });
      };
      return expandStream<GenerateContentResponse, ModelEvent>(open, {
        map(chunk, emit) {
          watch!.touch();
          const candidate = chunk.candidates?.[0];
          for (const part of candidate?.content?.parts ?? []) {
            // Thought summaries (`thought: true`) are the model's reasoning, not its answer.
            if (typeof part.text === "string" && part.text && !part.thought) emit({ type: "text", delta: part.text });
            if (part.functionCall) {
              toolCalls++;
              const call = part.functionCall;
              emit({ type: "tool_use", id: call.id || `${SYNTHETIC_ID}${++callSeq}`, name: call.name ?? "", input: call.args ?? {} });
            }
          }
          const usage = chunk.usageMetadata;
          if (usage) {
            // Thinking tokens are billed as output but counted apart from candidatesTokenCount
            // (source: Gemini API reference, UsageMetadata.thoughtsTokenCount; "Thinking" guide, pricing).
            const output = (usage.candidatesTokenCount ?? 0) + (usage.thoughtsTokenCount ?? 0);
            // Context-cache hits are inside promptTokenCount and again in cachedContentTokenCount
            // (source: @google/genai GenerateContentResponseUsageMetadata): moved out, as for OpenAI.
            const prompt = usage.promptTokenCount;
            const cached = typeof prompt === "number" ? Math.min(Math.max(0, usage.cachedContentTokenCount ?? 0), prompt) : 0;
            emit({
              type: "usage",
              ...(typeof prompt === "number" ? { inputTokens: prompt - cached } : {}),
              ...(cached > 0 ? { cacheReadTokens: cached } : {}),
              ...(typeof usage.candidatesTokenCount === "number" || typeof usage.thoughtsTokenCount === "number" ? { outputTokens: output } : {}),
            });
          }
          if (candidate?.finishReason) finish = candidate.finishReason;
          // A prompt blocked before any candidate: no finishReason comes, the answer is a refusal.
          else if (chunk.promptFeedback?.blockReason) finish = "SAFETY";
        },
        end(emit) {
          ended = true;
          if (!finish) throw new ProviderError(ErrorCode.ProviderError, "provider gemini: stream ended without a finishReason");
          emit({ type: "stop", reason: toolCalls ? "tool_use" : stopReason(finish) });
        },
        error(err) {
          // Before the watch exists (no key, the SDK's import) the error is the adapter's own.
          if (watch === undefined) return err;
          // An aborted SDK stream may end early, or throw its own AbortError: the abort's reason is the answer.
          const stopped = watch.stopped();
          if (stopped !== undefined) return stopped;
          // The error type and RetryInfo are handed to the one mapper as the shapes it reads from
          // the other SDKs' errors: `type`, and the wait as a `retry-after` header (seconds).
          const { type, retryAfterSeconds } = geminiErrorFacts(err);
          const facts = { ...(type ? { type } : {}), ...(retryAfterSeconds !== undefined ? { headers: { "retry-after": String(retryAfterSeconds) } } : {}) };
          return toProviderError(err instanceof Error ? Object.assign(err, facts) : err, { provider: "gemini", endpoint: where, logger: options.logger });
        },
        // Closed before the stream ended (the consumer stopped, or a failure): cancel the HTTP request.
        dispose: () => watch?.dispose(!ended),
      });
    },
  };
}
