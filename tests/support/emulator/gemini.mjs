// Gemini API wire format (Google AI "Generative Language" API, v1beta), as @google/genai speaks it:
//   POST /v1beta/models/{model}:streamGenerateContent?alt=sse  (SSE `data: {GenerateContentResponse}`)
//   POST /v1beta/models/{model}:generateContent                (one GenerateContentResponse)
// Key in the `x-goog-api-key` header. Each streamed chunk is a whole GenerateContentResponse:
// `candidates[0].content.parts[]` hold text deltas or whole `functionCall {name, args}` parts
// (every parallel call in one chunk; the Developer API sends no call `id`), the last chunk has
// `finishReason: "STOP"` (also after function calls) and `usageMetadata` with
// `candidatesTokenCount`; earlier chunks carry `promptTokenCount` only. There is no end marker
// such as `[DONE]`: the stream just ends. Errors are google.rpc.Status bodies
// `{error: {code, message, status, details?}}` with the HTTP status; an error inside a stream is
// a `data:` line holding such a body.
// Sources: Gemini API reference "Generating content" (generateContent, streamGenerateContent,
// GenerateContentResponse, UsageMetadata), "Function calling" guide, "Troubleshooting" (error
// codes); the SDK's request paths and SSE parser (node_modules/@google/genai/dist/node/index.mjs:
// `{model}:streamGenerateContent?alt=sse`, `processStreamResponse`, `throwIfStreamErrorChunk`).
import { toolNames as declaredNames } from "./conversation.mjs";
import { partText } from "./script.mjs";
import { SSE_HEADERS, randomId, sseData } from "./wire.mjs";

/** @typedef {import("./script.mjs").Conversation} Conversation */
/** @typedef {import("./script.mjs").MessageReply} MessageReply */
/** @typedef {import("./wire.mjs").RenderContext} RenderContext */

export const name = "gemini";
export const streamHeaders = SSE_HEADERS;

/** `/v1beta/models/{model}:{method}`; the model id may contain dots and dashes. */
const ROUTE = /^\/v1beta\/models\/([^/:]+):(streamGenerateContent|generateContent)$/;

/**
 * The model and method of a Gemini model route, or null for any other path.
 * @param {string} path URL path without the query string
 * @returns {{model: string, stream: boolean} | null}
 */
export function matchRoute(path) {
  const m = ROUTE.exec(path);
  return m ? { model: decodeURIComponent(m[1] ?? ""), stream: m[2] === "streamGenerateContent" } : null;
}

/**
 * Whether the request streams: the method in the path decides (the body has no flag).
 * @param {any} _body
 * @param {string} [path]
 */
export function isStream(_body, path = "") {
  return matchRoute(path)?.stream === true;
}

/**
 * Text of a Gemini content's text parts.
 * @param {any} content
 */
function textOf(content) {
  const parts = Array.isArray(content?.parts) ? content.parts : [];
  return parts
    .filter((/** @type {any} */ p) => typeof p?.text === "string")
    .map((/** @type {any} */ p) => p.text)
    .join("");
}

/**
 * A functionResponse's content as the script sees it: `response.output`, else `response.error`,
 * else the whole response object as JSON.
 * @param {any} response
 */
function responseText(response) {
  const value = response?.output ?? response?.error ?? response;
  return typeof value === "string" ? value : JSON.stringify(value);
}

/**
 * @param {any} body
 * @returns {Conversation}
 */
export function parse(body) {
  const contents = Array.isArray(body?.contents) ? body.contents : [];
  let lastUserText = "";
  for (let i = contents.length - 1; i >= 0 && !lastUserText; i--) {
    if (contents[i]?.role === "user") lastUserText = textOf(contents[i]);
  }
  const last = contents.at(-1);
  const lastParts = Array.isArray(last?.parts) ? last.parts : [];
  const results = lastParts.filter((/** @type {any} */ p) => p?.functionResponse);
  const tools = (Array.isArray(body?.tools) ? body.tools : []).flatMap((/** @type {any} */ t) => declaredNames(t?.functionDeclarations));
  return {
    tools,
    lastUserText,
    toolResults: last?.role === "user" && results.length > 0 ? results.map((/** @type {any} */ p) => responseText(p.functionResponse.response)) : null,
  };
}

/** Thinking tokens reported when the request's text contains `THINK` (a thinking model's usage). */
const THOUGHTS = 7;

/**
 * @param {RenderContext} ctx
 * @param {boolean} final
 */
function usageMetadata(ctx, final) {
  const thoughts = JSON.stringify(ctx.body?.contents ?? "").includes("THINK") ? THOUGHTS : 0;
  return final
    ? {
        promptTokenCount: ctx.inputTokens,
        // part of promptTokenCount (GenerateContentResponseUsageMetadata.cachedContentTokenCount)
        ...(ctx.cachedTokens ? { cachedContentTokenCount: ctx.cachedTokens } : {}),
        candidatesTokenCount: ctx.outputTokens,
        ...(thoughts ? { thoughtsTokenCount: thoughts } : {}),
        totalTokenCount: ctx.inputTokens + ctx.outputTokens + thoughts,
      }
    : { promptTokenCount: ctx.inputTokens, totalTokenCount: ctx.inputTokens };
}

/**
 * A GenerateContentResponse holding `parts`.
 * @param {RenderContext} ctx
 * @param {string} responseId
 * @param {unknown[]} parts
 * @param {boolean} final the last chunk: `finishReason` and the whole usage
 */
function response(ctx, responseId, parts, final) {
  return {
    candidates: [{ content: { parts, role: "model" }, ...(final ? { finishReason: "STOP" } : {}), index: 0 }],
    usageMetadata: usageMetadata(ctx, final),
    modelVersion: ctx.model,
    responseId,
  };
}

/**
 * `BLOCK_PROMPT` in the request: Gemini refuses the prompt itself, with `promptFeedback.blockReason`
 * and no candidate at all (source: Gemini API reference, GenerateContentResponse.promptFeedback).
 * @param {RenderContext} ctx
 */
function blocked(ctx) {
  return JSON.stringify(ctx.body?.contents ?? "").includes("BLOCK_PROMPT");
}

/**
 * @param {RenderContext} ctx
 * @param {string} responseId
 */
function blockedResponse(ctx, responseId) {
  return { promptFeedback: { blockReason: "SAFETY" }, usageMetadata: usageMetadata(ctx, false), modelVersion: ctx.model, responseId };
}

/** @param {MessageReply} reply */
function callParts(reply) {
  return reply.parts.flatMap((p) => (p.type === "tool_call" ? [{ functionCall: { name: p.name, args: p.input } }] : []));
}

/**
 * One chunk per text delta, then one chunk with every function call; the last chunk carries
 * `finishReason` and the final usage.
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 * @returns {string[]}
 */
export function streamFrames(reply, ctx) {
  const id = randomId("", 22);
  if (blocked(ctx)) return [sseData(blockedResponse(ctx, id))];
  /** @type {unknown[][]} */
  const chunks = reply.parts.flatMap((p) => (p.type === "text" ? p.chunks.map((text) => [{ text }]) : []));
  const calls = callParts(reply);
  if (calls.length > 0) chunks.push(calls);
  if (chunks.length === 0) chunks.push([{ text: "" }]);
  return chunks.map((parts, i) => sseData(response(ctx, id, parts, i === chunks.length - 1)));
}

/**
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 */
export function messageBody(reply, ctx) {
  if (blocked(ctx)) return blockedResponse(ctx, randomId("", 22));
  const text = reply.parts.map((p) => (p.type === "text" ? partText(p) : "")).join("");
  return response(ctx, randomId("", 22), [...(text ? [{ text }] : []), ...callParts(reply)], true);
}

/**
 * The frames of a stream that has sent one text chunk.
 * @param {string} text
 * @param {RenderContext} ctx
 */
export function partialFrames(text, ctx) {
  return [sseData(response(ctx, randomId("", 22), [{ text }], false))];
}

/**
 * @param {number} code
 * @param {string} status
 * @param {string} message
 * @param {unknown[]} [details]
 */
function status(code, status, message, details) {
  return { error: { code, message, status, ...(details ? { details } : {}) } };
}

/** An error in the stream: the model overloaded (Gemini's 503 UNAVAILABLE). @param {string} message */
export function errorFrame(message) {
  return sseData(status(503, "UNAVAILABLE", message));
}

/** The ErrorInfo Google attaches to a refused key (source: Gemini API "Troubleshooting"; observed bodies). */
const KEY_INVALID = [
  {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    reason: "API_KEY_INVALID",
    domain: "googleapis.com",
    metadata: { service: "generativelanguage.googleapis.com" },
  },
];

/**
 * @param {import("./respond.mjs").ErrorKind} kind
 * @param {string} message
 */
export function errorResponse(kind, message) {
  switch (kind) {
    case "server":
      return { status: 500, body: status(500, "INTERNAL", message) };
    case "invalid_request":
      return { status: 400, body: status(400, "INVALID_ARGUMENT", message) };
    case "overloaded":
      return { status: 503, body: status(503, "UNAVAILABLE", message) };
    case "authentication":
      return { status: 401, body: status(401, "UNAUTHENTICATED", message) };
    case "invalid_key":
      // What the Gemini API answers for a key it does not know: 400, not 401.
      return { status: 400, body: status(400, "INVALID_ARGUMENT", message, KEY_INVALID) };
    case "rate_limit":
      // Gemini says when to come back in a RetryInfo detail, not a Retry-After header.
      return {
        status: 429,
        body: status(429, "RESOURCE_EXHAUSTED", message, [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "1s" }]),
      };
  }
}

/**
 * `GET /v1beta/models` (source: Gemini API reference, "models.list").
 * @param {string} model
 */
export function modelList(model) {
  return {
    models: [
      {
        name: `models/${model}`,
        version: "001",
        displayName: "Emulator",
        inputTokenLimit: 1048576,
        outputTokenLimit: 65536,
        supportedGenerationMethods: ["generateContent", "countTokens"],
      },
    ],
  };
}
