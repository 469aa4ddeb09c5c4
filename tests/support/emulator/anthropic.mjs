// Anthropic Messages API wire format (POST /v1/messages).
// Streaming: named SSE events message_start → (content_block_start, content_block_delta*,
// content_block_stop)* with a ping after the first block start → message_delta → message_stop.
import { contentText, lastUserText, messageList, toolNames } from "./conversation.mjs";
import { jsonChunks, partText } from "./script.mjs";
import { SSE_HEADERS, randomId, sseEvent } from "./wire.mjs";

/** @typedef {import("./script.mjs").Conversation} Conversation */
/** @typedef {import("./script.mjs").MessageReply} MessageReply */
/** @typedef {import("./script.mjs").Part} Part */
/** @typedef {import("./wire.mjs").RenderContext} RenderContext */
/** @typedef {Part & {id?: string}} IdentifiedPart */

export const name = "anthropic";
export const streamHeaders = SSE_HEADERS;

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
  return { tools: toolNames(body?.tools), lastUserText: lastUserText(messages), toolResults: toolResults(messages.at(-1)) };
}

/**
 * Contents of the `tool_result` blocks of a user message, or null.
 * @param {any} message
 * @returns {string[] | null}
 */
function toolResults(message) {
  if (message?.role !== "user" || !Array.isArray(message.content)) return null;
  /** @type {any[]} */
  const blocks = message.content;
  const results = blocks.filter((block) => block?.type === "tool_result");
  return results.length > 0 ? results.map((block) => contentText(block.content)) : null;
}

/**
 * @param {MessageReply} reply
 * @returns {IdentifiedPart[]}
 */
function withIds(reply) {
  return reply.parts.map((part) => (part.type === "tool_call" ? { ...part, id: randomId("toolu_01", 22) } : part));
}

/**
 * @param {RenderContext} ctx
 * @param {number} outputTokens
 */
function usage(ctx, outputTokens) {
  return {
    input_tokens: ctx.inputTokens,
    cache_creation_input_tokens: 0,
    cache_read_input_tokens: 0,
    output_tokens: outputTokens,
  };
}

/**
 * @param {RenderContext} ctx
 * @param {unknown[]} content
 * @param {string | null} stopReason
 * @param {number} outputTokens
 */
function message(ctx, content, stopReason, outputTokens) {
  return {
    id: randomId("msg_01", 22),
    type: "message",
    role: "assistant",
    model: ctx.model,
    content,
    stop_reason: stopReason,
    stop_sequence: null,
    usage: usage(ctx, outputTokens),
  };
}

/** @param {RenderContext} ctx */
function messageStart(ctx) {
  return sseEvent("message_start", { type: "message_start", message: message(ctx, [], null, 1) });
}

/** @param {IdentifiedPart} part */
function emptyBlock(part) {
  return part.type === "text" ? { type: "text", text: "" } : { type: "tool_use", id: part.id, name: part.name, input: {} };
}

/** @param {IdentifiedPart} part */
function fullBlock(part) {
  return part.type === "text" ? { type: "text", text: partText(part) } : { type: "tool_use", id: part.id, name: part.name, input: part.input };
}

/** @param {IdentifiedPart} part */
function deltas(part) {
  return part.type === "text"
    ? part.chunks.map((text) => ({ type: "text_delta", text }))
    : jsonChunks(part.input).map((partial_json) => ({ type: "input_json_delta", partial_json }));
}

/**
 * @param {number} index
 * @param {IdentifiedPart} part
 */
function blockStart(index, part) {
  return sseEvent("content_block_start", { type: "content_block_start", index, content_block: emptyBlock(part) });
}

/**
 * @param {number} index
 * @param {unknown} delta
 */
function blockDelta(index, delta) {
  return sseEvent("content_block_delta", { type: "content_block_delta", index, delta });
}

/**
 * @param {IdentifiedPart} part
 * @param {number} index
 */
function blockFrames(part, index) {
  return [
    blockStart(index, part),
    ...deltas(part).map((delta) => blockDelta(index, delta)),
    sseEvent("content_block_stop", { type: "content_block_stop", index }),
  ];
}

const PING = sseEvent("ping", { type: "ping" });

/**
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 * @returns {string[]}
 */
export function streamFrames(reply, ctx) {
  const blocks = withIds(reply).flatMap(blockFrames);
  blocks.splice(1, 0, PING);
  return [
    messageStart(ctx),
    ...blocks,
    sseEvent("message_delta", {
      type: "message_delta",
      delta: { stop_reason: reply.stop, stop_sequence: null },
      usage: { output_tokens: ctx.outputTokens },
    }),
    sseEvent("message_stop", { type: "message_stop" }),
  ];
}

/**
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 */
export function messageBody(reply, ctx) {
  return message(ctx, withIds(reply).map(fullBlock), reply.stop, ctx.outputTokens);
}

/**
 * The frames of a stream that has started a text block and sent one delta.
 * @param {string} text
 * @param {RenderContext} ctx
 */
export function partialFrames(text, ctx) {
  const part = { type: /** @type {const} */ ("text"), chunks: [text] };
  return [messageStart(ctx), blockStart(0, part), PING, blockDelta(0, { type: "text_delta", text })];
}

/** @param {string} message */
export function errorFrame(message) {
  return sseEvent("error", { type: "error", error: { type: "overloaded_error", message } });
}

const ERRORS = {
  server: { status: 500, type: "api_error" },
  invalid_request: { status: 400, type: "invalid_request_error" },
  overloaded: { status: 529, type: "overloaded_error" },
  authentication: { status: 401, type: "authentication_error" },
  rate_limit: { status: 429, type: "rate_limit_error" },
};

/**
 * @param {keyof typeof ERRORS} kind
 * @param {string} message
 */
export function errorResponse(kind, message) {
  const { status, type } = ERRORS[kind];
  // The id is in the body and in the `request-id` header, where the SDK reads it (`requestID`).
  const id = randomId("req_01", 22);
  return { status, body: { type: "error", error: { type, message }, request_id: id }, headers: { "request-id": id } };
}
