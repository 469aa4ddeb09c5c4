// OpenAI Chat Completions wire format (POST /v1/chat/completions).
// Streaming: `data: {chat.completion.chunk}` SSE lines, a finish chunk with an empty delta,
// an optional usage chunk (`choices: []`) when stream_options.include_usage, then `data: [DONE]`.
import { contentText, toolNames, lastUserText, messageList, trailing } from "./conversation.mjs";
import { jsonChunks, partText } from "./script.mjs";
import { SSE_HEADERS, randomId, sseData, unixSeconds } from "./wire.mjs";

/** @typedef {import("./script.mjs").Conversation} Conversation */
/** @typedef {import("./script.mjs").MessageReply} MessageReply */
/** @typedef {import("./script.mjs").ToolCallPart} ToolCallPart */
/** @typedef {import("./wire.mjs").RenderContext} RenderContext */

export const name = "openai";
export const streamHeaders = SSE_HEADERS;
const FINGERPRINT = "fp_emulator";

/** @param {any} body */
export function isStream(body) {
  return body?.stream === true;
}

/**
 * @param {any} body
 * @returns {Conversation}
 */
export function parse(body) {
  const messages = messageList(body?.messages);
  const results = trailing(messages, (m) => m?.role === "tool");
  return {
    tools: toolNames(body?.tools),
    lastUserText: lastUserText(messages),
    toolResults: results.length > 0 ? results.map((m) => contentText(m.content)) : null,
  };
}

/** @param {MessageReply} reply */
function finishReason(reply) {
  return reply.stop === "tool_use" ? "tool_calls" : "stop";
}

/** @param {RenderContext} ctx */
function includeUsage(ctx) {
  return ctx.body?.stream_options?.include_usage === true;
}

/** @param {RenderContext} ctx */
function usage(ctx) {
  return {
    prompt_tokens: ctx.inputTokens,
    completion_tokens: ctx.outputTokens,
    total_tokens: ctx.inputTokens + ctx.outputTokens,
    // `cached_tokens` is part of `prompt_tokens` (OpenAI "Prompt caching": a subset billed at the cached-input rate).
    prompt_tokens_details: { cached_tokens: ctx.cachedTokens ?? 0 },
    completion_tokens_details: { reasoning_tokens: 0 },
  };
}

/**
 * Returns a builder of chunks sharing one completion id and timestamp.
 * @param {RenderContext} ctx
 */
function chunker(ctx) {
  const head = { id: randomId("chatcmpl-", 29), object: "chat.completion.chunk", created: unixSeconds(), model: ctx.model };
  const tail = { system_fingerprint: FINGERPRINT, ...(includeUsage(ctx) ? { usage: null } : {}) };
  return {
    /**
     * @param {Record<string, unknown>} delta
     * @param {string | null} [finish]
     */
    choice: (delta, finish = null) => sseData({ ...head, choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }], ...tail }),
    usage: () => sseData({ ...head, choices: [], system_fingerprint: FINGERPRINT, usage: usage(ctx) }),
  };
}

/**
 * Deltas streaming one tool call: id/type/name first, then the arguments in pieces.
 * @param {ToolCallPart} part
 * @param {number} index
 */
function toolCallDeltas(part, index) {
  const first = { index, id: randomId("call_", 24), type: "function", function: { name: part.name, arguments: "" } };
  const rest = jsonChunks(part.input).map((args) => ({ index, function: { arguments: args } }));
  return [first, ...rest].map((call) => ({ tool_calls: [call] }));
}

/**
 * @param {MessageReply} reply
 * @returns {Record<string, unknown>[]}
 */
function contentDeltas(reply) {
  let toolIndex = 0;
  /** @type {Record<string, unknown>[]} */
  const deltas = [];
  for (const part of reply.parts) {
    if (part.type === "text") deltas.push(...part.chunks.map((content) => ({ content })));
    else deltas.push(...toolCallDeltas(part, toolIndex++));
  }
  return deltas;
}

const ROLE_DELTA = Object.freeze({ role: "assistant", content: "", refusal: null });

/**
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 * @returns {string[]}
 */
export function streamFrames(reply, ctx) {
  const chunk = chunker(ctx);
  const frames = [chunk.choice(ROLE_DELTA), ...contentDeltas(reply).map((d) => chunk.choice(d))];
  frames.push(chunk.choice({}, finishReason(reply)));
  if (includeUsage(ctx)) frames.push(chunk.usage());
  frames.push(sseData("[DONE]"));
  return frames;
}

/**
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 */
export function messageBody(reply, ctx) {
  const text = reply.parts.map((p) => (p.type === "text" ? partText(p) : "")).join("");
  const toolCalls = reply.parts.flatMap((p) =>
    p.type === "tool_call" ? [{ id: randomId("call_", 24), type: "function", function: { name: p.name, arguments: JSON.stringify(p.input) } }] : [],
  );
  const message = {
    role: "assistant",
    content: text || null,
    refusal: null,
    annotations: [],
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
  return {
    id: randomId("chatcmpl-", 29),
    object: "chat.completion",
    created: unixSeconds(),
    model: ctx.model,
    choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason(reply) }],
    usage: usage(ctx),
    system_fingerprint: FINGERPRINT,
  };
}

/**
 * The frames of a stream that has sent the role chunk and one content delta.
 * @param {string} text
 * @param {RenderContext} ctx
 */
export function partialFrames(text, ctx) {
  const chunk = chunker(ctx);
  return [chunk.choice(ROLE_DELTA), chunk.choice({ content: text })];
}

/**
 * @param {string} message
 * @param {string} type
 */
function errorObject(message, type) {
  return { error: { message, type, param: null, code: null } };
}

/** @param {string} message */
export function errorFrame(message) {
  return sseData(errorObject(message, "server_error"));
}

const ERRORS = {
  server: { status: 500, type: "server_error" },
  invalid_request: { status: 400, type: "invalid_request_error" },
  overloaded: { status: 503, type: "server_error" },
  authentication: { status: 401, type: "invalid_request_error" },
  rate_limit: { status: 429, type: "requests" },
};

/**
 * @param {keyof typeof ERRORS} kind
 * @param {string} message
 */
export function errorResponse(kind, message) {
  const { status, type } = ERRORS[kind];
  // OpenAI names each request in the `x-request-id` header (the SDK's `requestID`).
  return { status, body: errorObject(message, type), headers: { "x-request-id": randomId("req_", 32) } };
}
