// The "model": decides what to answer from a provider-neutral view of the request.
// Every provider module normalizes its request body into a Conversation, and renders
// the Reply returned by `decide` in its own wire format.

/**
 * @typedef {object} Conversation
 * @property {string[]} tools           names of the tools offered in the request
 * @property {string} lastUserText      text of the latest user message that has text ("" if none)
 * @property {string[] | null} toolResults contents of the trailing tool results, or null when the
 *                                      last message is not a tool result
 */

/**
 * @typedef {{type: "text", chunks: string[]}} TextPart
 * @typedef {{type: "tool_call", name: string, input: Record<string, unknown>}} ToolCallPart
 * @typedef {TextPart | ToolCallPart} Part
 * @typedef {{kind: "message", parts: Part[], stop: "end_turn" | "tool_use"}} MessageReply
 * @typedef {"http_500" | "http_400" | "http_401" | "http_429" | "cut" | "error_event" | "stall_after_headers" | "stall_before_headers"} FailureMode
 * @typedef {{kind: "failure", mode: FailureMode, message: string, partial: string, quoteCredential: boolean}} FailureReply
 * @typedef {MessageReply | FailureReply} Reply
 */

const CALCULATOR = "calculator";

/**
 * Content tokens that trigger a failure, checked in this order. `QUOTE_KEY` anywhere in the text
 * makes the failure's message quote the credential the request carried (`x-api-key` or
 * `Authorization`), as a careless provider or proxy might.
 */
const FAILURES = /** @type {const} */ ([
  ["FAIL_500", "http_500", "Emulated internal server error"],
  ["FAIL_401", "http_401", "Emulated invalid credentials"],
  ["FAIL_429", "http_429", "Emulated rate limit"],
  ["FAIL_400", "http_400", "Emulated invalid request"],
  ["FAIL_CUT", "cut", "Emulated connection cut"],
  ["FAIL_ERROR_EVENT", "error_event", "Overloaded"],
  // A hung provider: headers and the first events (message start, one text delta), then nothing
  // until the client gives up; or nothing at all, not even the status line.
  ["STALL_AFTER_HEADERS", "stall_after_headers", "Emulated stall after the first events"],
  ["STALL_BEFORE_HEADERS", "stall_before_headers", "Emulated stall before the headers"],
]);

/**
 * Decide the reply for a conversation. Pure and deterministic: the same conversation
 * always yields the same reply (ids are assigned later by the provider renderers).
 * @param {Conversation} conv
 * @returns {Reply}
 */
export function decide(conv) {
  const hasCalculator = conv.tools.includes(CALCULATOR);
  const text = conv.lastUserText;
  if (hasCalculator && text.includes("LOOP_FOREVER")) {
    return toolCalls(["1+1"]);
  }
  // A runaway loop that varies its input (the last result + 1): loop detection does not see it,
  // only the iteration limit ends it.
  if (hasCalculator && text.includes("LOOP_GROWING")) {
    const last = Number(conv.toolResults?.at(-1));
    return toolCalls([`${Number.isFinite(last) ? last : 1}+1`]);
  }
  if (conv.toolResults) {
    return textReply(`The answer is ${conv.toolResults.join(", ")}.`);
  }
  const failure = failureFor(text);
  if (failure) return failure;
  // A group message starts with the host-written sender line (agent/user-message.ts); the
  // command a test sends is the text after it.
  const use = useToolCall(text.replace(/^\[exoclaw sender\][^\n]*\n/, ""), conv.tools);
  if (use) return { kind: "message", parts: [use], stop: "tool_use" };
  const expressions = hasCalculator ? calculatorExpressions(text) : null;
  if (expressions) {
    return toolCalls(expressions, expressions.length === 1 ? "Let me calculate." : undefined);
  }
  // A proactive turn (heartbeat) with nothing to report answers the host's no-reply token.
  if (text.includes("ANSWER_NO_REPLY")) return textReply("NO_REPLY");
  if (text === "ping") {
    return { kind: "message", parts: [{ type: "text", chunks: ["pong"] }], stop: "end_turn" };
  }
  return textReply(`You said: ${text}`);
}

/**
 * @param {string} text
 * @returns {FailureReply | null}
 */
function failureFor(text) {
  for (const [token, mode, message] of FAILURES) {
    if (text.includes(token)) return { kind: "failure", mode, message, partial: "Partial ", quoteCredential: text.includes("QUOTE_KEY") };
  }
  return null;
}

/**
 * `calc: a; b; c` → ["a", "b", "c"]; `... what is X? ...` → ["X"]; otherwise null.
 * @param {string} text
 * @returns {string[] | null}
 */
export function calculatorExpressions(text) {
  const calc = /^\s*calc:(.*)$/is.exec(text);
  if (calc) {
    const list = (calc[1] ?? "")
      .split(";")
      .map((s) => s.trim())
      .filter(Boolean);
    if (list.length > 0) return list;
  }
  const question = /what is (.+?)\?/i.exec(text);
  return question ? [question[1] ?? ""] : null;
}

/**
 * `use:<tool> <json>` → one call to `<tool>` with that JSON object as input, when the request
 * offers that tool (`use:<tool>` alone means `{}`); otherwise null. Lets tests drive any plugin.
 *
 * `force:<tool> <json>` → the same call whether or not the request offers `<tool>`: a model that
 * was prompt-injected (or is simply wrong) asking for a tool outside its agent's allowlist, so
 * tests can check that the host, not the model, enforces the allowlist.
 * @param {string} text
 * @param {string[]} tools
 * @returns {ToolCallPart | null}
 */
export function useToolCall(text, tools) {
  const m = /^\s*(use|force):(\S+)\s*(.*)$/s.exec(text);
  if (!m) return null;
  const name = m[2] ?? "";
  if (m[1] === "use" && !tools.includes(name)) return null;
  let input = {};
  if ((m[3] ?? "").trim()) {
    try {
      input = JSON.parse(m[3] ?? "{}");
    } catch {
      return null;
    }
  }
  return { type: "tool_call", name, input };
}

/**
 * @param {string[]} expressions one calculator call per expression
 * @param {string} [preamble] optional text streamed before the calls
 * @returns {MessageReply}
 */
function toolCalls(expressions, preamble) {
  /** @type {Part[]} */
  const parts = preamble ? [{ type: "text", chunks: chunkText(preamble) }] : [];
  for (const expression of expressions) {
    parts.push({ type: "tool_call", name: CALCULATOR, input: { expression } });
  }
  return { kind: "message", parts, stop: "tool_use" };
}

/**
 * @param {string} text
 * @returns {MessageReply}
 */
function textReply(text) {
  return { kind: "message", parts: [{ type: "text", chunks: chunkText(text) }], stop: "end_turn" };
}

/**
 * Split text into word-sized deltas, keeping every character ("a b c" → ["a ", "b ", "c"]).
 * Guarantees at least 3 chunks when the text has at least 3 characters.
 * @param {string} text
 * @returns {string[]}
 */
export function chunkText(text) {
  const words = text.split(/(?<=\s)(?=\S)/);
  return words.length >= 3 || text.length < 3 ? words : splitEvenly(text, 3);
}

/**
 * Split a string into `n` contiguous pieces of (nearly) equal length.
 * @param {string} s
 * @param {number} n
 * @returns {string[]}
 */
export function splitEvenly(s, n) {
  const size = Math.max(1, Math.ceil(s.length / n));
  const pieces = [];
  for (let i = 0; i < s.length; i += size) pieces.push(s.slice(i, i + size));
  return pieces.length > 0 ? pieces : [""];
}

/**
 * Split serialized tool arguments into several partial-JSON deltas.
 * @param {Record<string, unknown>} input
 * @returns {string[]}
 */
export function jsonChunks(input) {
  return splitEvenly(JSON.stringify(input), 4);
}

/**
 * Full text of a text part.
 * @param {TextPart} part
 */
export function partText(part) {
  return part.chunks.join("");
}

/**
 * Input tokens: a deterministic function of the request size.
 * @param {number} bodyBytes
 */
export function inputTokens(bodyBytes) {
  return Math.max(1, Math.ceil(bodyBytes / 4));
}

/**
 * Output tokens: whitespace-separated words produced (tool calls count their name
 * and serialized input).
 * @param {Reply} reply
 */
export function outputTokens(reply) {
  if (reply.kind === "failure") return countWords(reply.partial);
  let total = 0;
  for (const part of reply.parts) {
    total += part.type === "text" ? countWords(partText(part)) : countWords(`${part.name} ${JSON.stringify(part.input)}`);
  }
  return Math.max(1, total);
}

/** @param {string} s */
function countWords(s) {
  return s.split(/\s+/).filter(Boolean).length;
}

/**
 * Prompt tokens the provider reports as served from its prompt cache, requested by a
 * `CACHED_<n>` token in the user text (at most the request's input tokens; 0 if none).
 * @param {string} text
 * @param {number} input the request's input tokens
 */
export function cachedTokens(text, input) {
  const m = /CACHED_(\d+)/.exec(text);
  return m ? Math.min(Number(m[1]), input) : 0;
}

/**
 * Delay between chunks requested by a `SLOW_<n>MS` token in the user text (0 if none).
 * @param {string} text
 */
export function slowTokenDelay(text) {
  const m = /SLOW_(\d+)MS/.exec(text);
  return m ? Number(m[1]) : 0;
}
