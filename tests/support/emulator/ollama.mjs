// Ollama chat wire format (POST /api/chat). Streams by default: NDJSON lines
// `{model, created_at, message, done: false}` then a final `{done: true, done_reason, ...counts}`.
// Tool calls arrive whole in one line, arguments as an object, without ids.
import { contentText, toolNames, lastUserText, messageList, trailing } from "./conversation.mjs";
import { partText } from "./script.mjs";
import { NDJSON_HEADERS, ndjsonLine } from "./wire.mjs";

/** @typedef {import("./script.mjs").Conversation} Conversation */
/** @typedef {import("./script.mjs").MessageReply} MessageReply */
/** @typedef {import("./wire.mjs").RenderContext} RenderContext */

export const name = "ollama";
export const streamHeaders = NDJSON_HEADERS;

/** @param {any} body */
export function isStream(body) {
  return body?.stream !== false;
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
function toolCalls(reply) {
  return reply.parts.flatMap((p) => (p.type === "tool_call" ? [{ function: { name: p.name, arguments: p.input } }] : []));
}

/**
 * @param {RenderContext} ctx
 * @param {Record<string, unknown>} message
 */
function line(ctx, message) {
  return { model: ctx.model, created_at: new Date().toISOString(), message: { role: "assistant", ...message }, done: false };
}

/**
 * The closing fields of the last line (or of a non-streamed answer).
 * @param {RenderContext} ctx
 */
function doneFields(ctx) {
  return {
    done: true,
    done_reason: "stop",
    total_duration: 0,
    load_duration: 0,
    prompt_eval_count: ctx.inputTokens,
    prompt_eval_duration: 0,
    eval_count: ctx.outputTokens,
    eval_duration: 0,
  };
}

/**
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 * @returns {string[]}
 */
export function streamFrames(reply, ctx) {
  const lines = reply.parts.flatMap((p) => (p.type === "text" ? p.chunks.map((content) => line(ctx, { content })) : []));
  const calls = toolCalls(reply);
  if (calls.length > 0) lines.push(line(ctx, { content: "", tool_calls: calls }));
  lines.push({ ...line(ctx, { content: "" }), ...doneFields(ctx) });
  return lines.map(ndjsonLine);
}

/**
 * @param {MessageReply} reply
 * @param {RenderContext} ctx
 */
export function messageBody(reply, ctx) {
  const content = reply.parts.map((p) => (p.type === "text" ? partText(p) : "")).join("");
  const calls = toolCalls(reply);
  return { ...line(ctx, { content, ...(calls.length > 0 ? { tool_calls: calls } : {}) }), ...doneFields(ctx) };
}

/**
 * The frames of a stream that has sent one content line.
 * @param {string} text
 * @param {RenderContext} ctx
 */
export function partialFrames(text, ctx) {
  return [ndjsonLine(line(ctx, { content: text }))];
}

/** @param {string} message */
export function errorFrame(message) {
  return ndjsonLine({ error: message });
}

const STATUS = { server: 500, invalid_request: 400, overloaded: 503, authentication: 401, rate_limit: 429 };

/**
 * @param {keyof typeof STATUS} kind
 * @param {string} message
 */
export function errorResponse(kind, message) {
  return { status: STATUS[kind], body: { error: message } };
}
