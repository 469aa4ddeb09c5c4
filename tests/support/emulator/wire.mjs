// Low-level wire helpers shared by the provider formats: response plans, SSE/NDJSON
// framing and provider-style ids.
import { randomBytes } from "node:crypto";

/**
 * What the server writes for one request: status, headers, body frames (written in
 * order, with the per-chunk delay between them) and how the response ends.
 * "destroy" flushes the frames and then kills the socket mid-response; "stall" flushes them and
 * then writes nothing more until the client closes the connection; "stall_before_headers"
 * writes nothing at all (not even the status line) until the client closes it.
 * @typedef {object} Plan
 * @property {number} status
 * @property {Record<string, string>} headers
 * @property {string[]} frames
 * @property {"end" | "destroy" | "stall" | "stall_before_headers"} ending
 */

/**
 * Per-request values every renderer needs.
 * @typedef {object} RenderContext
 * @property {string} model
 * @property {boolean} stream
 * @property {number} inputTokens
 * @property {number} outputTokens
 * @property {number} [cachedTokens] prompt tokens served from the provider's cache (part of
 *   `inputTokens` for OpenAI and Gemini), asked for by a `CACHED_<n>` token in the user text
 * @property {any} body the parsed request body (for provider-specific options)
 */

export const JSON_HEADERS = Object.freeze({ "content-type": "application/json" });
export const SSE_HEADERS = Object.freeze({
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
});
export const NDJSON_HEADERS = Object.freeze({ "content-type": "application/x-ndjson" });

/**
 * @param {number} status
 * @param {unknown} body
 * @returns {Plan}
 */
export function jsonPlan(status, body) {
  return { status, headers: { ...JSON_HEADERS }, frames: [JSON.stringify(body)], ending: "end" };
}

/**
 * @param {Readonly<Record<string, string>>} headers
 * @param {string[]} frames
 * @param {"end" | "destroy" | "stall"} [ending]
 * @returns {Plan}
 */
export function streamPlan(headers, frames, ending = "end") {
  return { status: 200, headers: { ...headers }, frames, ending };
}

/**
 * A named SSE event (Anthropic style).
 * @param {string} event
 * @param {unknown} data
 */
export function sseEvent(event, data) {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * An unnamed SSE event (OpenAI style). Strings are sent verbatim (`[DONE]`).
 * @param {unknown} data
 */
export function sseData(data) {
  return `data: ${typeof data === "string" ? data : JSON.stringify(data)}\n\n`;
}

/**
 * One NDJSON line (Ollama style).
 * @param {unknown} data
 */
export function ndjsonLine(data) {
  return `${JSON.stringify(data)}\n`;
}

const BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * `prefix` followed by `length` random base62 characters.
 * @param {string} prefix
 * @param {number} length
 */
export function randomId(prefix, length) {
  const bytes = randomBytes(length);
  let id = prefix;
  for (const b of bytes) id += BASE62[b % 62];
  return id;
}

/** Unix time in seconds. */
export function unixSeconds() {
  return Math.floor(Date.now() / 1000);
}
