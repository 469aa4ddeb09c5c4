// Turns a scripted Reply into a response Plan using one provider format's primitives.
import { jsonPlan, streamPlan, JSON_HEADERS } from "./wire.mjs";

/** @typedef {import("./script.mjs").Conversation} Conversation */
/** @typedef {import("./script.mjs").Reply} Reply */
/** @typedef {import("./script.mjs").MessageReply} MessageReply */
/** @typedef {import("./script.mjs").FailureReply} FailureReply */
/** @typedef {import("./wire.mjs").Plan} Plan */
/** @typedef {import("./wire.mjs").RenderContext} RenderContext */
/**
 * `invalid_key` is Gemini's answer to an unknown key (400 API_KEY_INVALID); only its routes use it.
 * @typedef {"server" | "invalid_request" | "overloaded" | "authentication" | "rate_limit" | "invalid_key"} ErrorKind
 */

/**
 * What each provider module (anthropic.mjs, openai.mjs, ollama.mjs, gemini.mjs) exports.
 * @typedef {object} ProviderFormat
 * @property {"anthropic" | "openai" | "ollama" | "gemini"} name
 * @property {Readonly<Record<string, string>>} streamHeaders
 * @property {(body: any, path?: string) => boolean} isStream   the URL path decides for Gemini
 * @property {(body: any) => Conversation} parse
 * @property {(reply: MessageReply, ctx: RenderContext) => string[]} streamFrames
 * @property {(reply: MessageReply, ctx: RenderContext) => unknown} messageBody
 * @property {(text: string, ctx: RenderContext) => string[]} partialFrames
 * @property {(message: string) => string} errorFrame
 * @property {(kind: ErrorKind, message: string) => {status: number, body: unknown, headers?: Record<string, string>}} errorResponse
 */

/**
 * @param {ProviderFormat} provider
 * @param {Reply} reply
 * @param {RenderContext} ctx
 * @returns {Plan}
 */
export function planReply(provider, reply, ctx) {
  if (reply.kind === "failure") return planFailure(provider, reply, ctx);
  return ctx.stream ? streamPlan(provider.streamHeaders, provider.streamFrames(reply, ctx)) : jsonPlan(200, provider.messageBody(reply, ctx));
}

/**
 * @param {ProviderFormat} provider
 * @param {ErrorKind} kind
 * @param {string} message
 * @returns {Plan}
 */
export function planError(provider, kind, message) {
  const { status, body, headers } = provider.errorResponse(kind, message);
  const plan = jsonPlan(status, body);
  return headers ? { ...plan, headers: { ...plan.headers, ...headers } } : plan;
}

/**
 * @param {ProviderFormat} provider
 * @param {FailureReply} reply
 * @param {RenderContext} ctx
 * @returns {Plan}
 */
function planFailure(provider, reply, ctx) {
  switch (reply.mode) {
    case "http_500":
      return planError(provider, "server", reply.message);
    case "http_400":
      return planError(provider, "invalid_request", reply.message);
    case "http_401":
      return planError(provider, "authentication", reply.message);
    case "http_429":
      return planError(provider, "rate_limit", reply.message);
    case "cut":
      // Non-streamed: headers and the start of a JSON body, then the socket dies.
      return ctx.stream
        ? streamPlan(provider.streamHeaders, provider.partialFrames(reply.partial, ctx), "destroy")
        : streamPlan(JSON_HEADERS, ['{"id":'], "destroy");
    case "error_event":
      // Non-streamed requests have no event channel: answer with an overloaded HTTP error.
      return ctx.stream
        ? streamPlan(provider.streamHeaders, [...provider.partialFrames(reply.partial, ctx), provider.errorFrame(reply.message)])
        : planError(provider, "overloaded", reply.message);
    case "stall_after_headers":
      // Headers and the first events (non-streamed: the start of a JSON body), then silence
      // until the client closes the connection.
      return ctx.stream
        ? streamPlan(provider.streamHeaders, provider.partialFrames(reply.partial, ctx), "stall")
        : streamPlan(JSON_HEADERS, ['{"id":'], "stall");
    case "stall_before_headers":
      // The request is read, then nothing is ever written: not even the status line.
      return { status: 200, headers: {}, frames: [], ending: "stall_before_headers" };
  }
}
