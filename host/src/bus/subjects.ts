/**
 * Bus subjects: building, escaping and parsing. Pure.
 *
 * Logical subjects (what callers publish to and what `docs/bus.md` documents):
 *
 * - `exoclaw.in.<channel>.<account>.<peer>`  inbound user messages
 * - `exoclaw.out.<channel>.<account>.<peer>` outbound replies
 * - `exoclaw.events.<agent>`                 turn events
 *
 * Every variable token is escaped with {@link escapeToken} so that no id can forge another
 * subject or a wildcard: bytes outside printable ASCII `!`..`~`, and `.`, `*`, `>`, `%`, are
 * written as `%XX` (upper-case hex of their UTF-8 bytes); the empty string is written `%`.
 * The scheme is injective, so distinct ids always give distinct subjects.
 */

/** The three subject families (and the JetStream streams that store them). */
export type StreamName = "in" | "out" | "events";

/** Every stream name, in a fixed order. */
export const STREAM_NAMES: readonly StreamName[] = ["in", "out", "events"];

/** The root token of every exoclaw subject. */
export const SUBJECT_ROOT = "exoclaw";

/** A channel address: which channel, which bot/account on it, which peer (user or group). */
export interface Address {
  channel: string;
  account: string;
  peer: string;
}

/** A logical subject split into its family and unescaped tokens. */
export type ParsedSubject =
  | ({ stream: "in" | "out" } & Address)
  | { stream: "events"; agent: string };

/** Thrown for ids that cannot be encoded and for strings that are not exoclaw subjects. */
export class SubjectError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SubjectError";
  }
}

const HEX = "0123456789ABCDEF";
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** True for bytes that stand for themselves in an escaped token. */
function isPlain(byte: number): boolean {
  // printable ASCII except the separator, the wildcards and the escape character itself
  return byte >= 0x21 && byte <= 0x7e && byte !== 0x2e /* . */ && byte !== 0x2a /* * */ && byte !== 0x3e /* > */ && byte !== 0x25 /* % */;
}

/**
 * Escapes one subject token. Injective: `unescapeToken(escapeToken(s)) === s` for every
 * well-formed string, and distinct inputs give distinct outputs.
 * @throws SubjectError for a string with unpaired UTF-16 surrogates (it has no UTF-8 form)
 */
export function escapeToken(token: string): string {
  if (token === "") return "%";
  if (LONE_SURROGATE.test(token)) throw new SubjectError(`subject token has unpaired surrogates: ${JSON.stringify(token)}`);
  let out = "";
  let plainRun = true;
  for (let i = 0; i < token.length; i++) {
    const c = token.charCodeAt(i);
    if (c >= 0x80 || !isPlain(c)) {
      plainRun = false;
      break;
    }
  }
  if (plainRun) return token;
  for (const byte of encoder.encode(token)) {
    if (isPlain(byte)) out += String.fromCharCode(byte);
    else out += "%" + HEX[byte >> 4] + HEX[byte & 15];
  }
  return out;
}

/**
 * Reverses {@link escapeToken}.
 * @throws SubjectError when `escaped` is not an output of `escapeToken` (bad escape, a raw
 *   special character, or bytes that are not UTF-8)
 */
export function unescapeToken(escaped: string): string {
  if (escaped === "%") return "";
  if (escaped === "") throw new SubjectError("empty subject token");
  const bytes: number[] = [];
  for (let i = 0; i < escaped.length; i++) {
    const c = escaped.charCodeAt(i);
    if (c === 0x25) {
      const hex = escaped.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(hex)) throw new SubjectError(`bad escape in subject token ${JSON.stringify(escaped)}`);
      const byte = parseInt(hex, 16);
      // a byte that escapeToken writes plain must not appear escaped (keeps the scheme a bijection)
      if (isPlain(byte)) throw new SubjectError(`needless escape in subject token ${JSON.stringify(escaped)}`);
      bytes.push(byte);
      i += 2;
    } else if (c < 0x80 && isPlain(c)) {
      bytes.push(c);
    } else {
      throw new SubjectError(`raw special character in subject token ${JSON.stringify(escaped)}`);
    }
  }
  try {
    return strictDecoder.decode(new Uint8Array(bytes));
  } catch {
    throw new SubjectError(`subject token is not UTF-8: ${JSON.stringify(escaped)}`);
  }
}

/** `exoclaw.in.<channel>.<account>.<peer>`, tokens escaped. */
export function inboundSubject(address: Address): string {
  return `${SUBJECT_ROOT}.in.${escapeToken(address.channel)}.${escapeToken(address.account)}.${escapeToken(address.peer)}`;
}

/** `exoclaw.out.<channel>.<account>.<peer>`, tokens escaped. */
export function outboundSubject(address: Address): string {
  return `${SUBJECT_ROOT}.out.${escapeToken(address.channel)}.${escapeToken(address.account)}.${escapeToken(address.peer)}`;
}

/** `exoclaw.events.<agent>`, token escaped. */
export function eventsSubject(agent: string): string {
  return `${SUBJECT_ROOT}.events.${escapeToken(agent)}`;
}

/** Number of variable tokens after `exoclaw.<stream>` for each stream. */
export const STREAM_TOKENS: Readonly<Record<StreamName, number>> = { in: 3, out: 3, events: 1 };

/**
 * Parses a logical subject back into its parts (unescaped).
 * @throws SubjectError for anything that {@link inboundSubject}, {@link outboundSubject} or
 *   {@link eventsSubject} cannot have produced
 */
export function parseSubject(subject: string): ParsedSubject {
  const tokens = subject.split(".");
  const [root, stream, ...rest] = tokens;
  if (root !== SUBJECT_ROOT || (stream !== "in" && stream !== "out" && stream !== "events")) {
    throw new SubjectError(`not an exoclaw subject: ${JSON.stringify(subject)}`);
  }
  if (rest.length !== STREAM_TOKENS[stream]) {
    throw new SubjectError(`subject ${JSON.stringify(subject)} needs ${STREAM_TOKENS[stream]} token(s) after exoclaw.${stream}`);
  }
  const parts = rest.map(unescapeToken);
  if (stream === "events") return { stream, agent: parts[0]! };
  return { stream, channel: parts[0]!, account: parts[1]!, peer: parts[2]! };
}

/** The stream a logical subject belongs to. @throws SubjectError as {@link parseSubject} */
export function streamOf(subject: string): StreamName {
  return parseSubject(subject).stream;
}

/**
 * The partition (0 ≤ p < `partitions`) of a logical subject: FNV-1a (32 bit) of the subject's
 * UTF-16 code units modulo `partitions`. Stable across processes and versions: it is part of
 * the NATS wire format (see docs/bus.md), so never change it without a migration.
 */
export function partitionOf(subject: string, partitions: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < subject.length; i++) {
    h ^= subject.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % partitions;
}

/** The subject as stored in JetStream: the logical subject plus its partition token. */
export function wireSubject(subject: string, partitions: number): string {
  return `${subject}.${partitionOf(subject, partitions)}`;
}

/**
 * Reverses {@link wireSubject}: drops the trailing partition token.
 * @throws SubjectError when the last token is not a partition number
 */
export function logicalSubject(wire: string): string {
  const dot = wire.lastIndexOf(".");
  if (dot < 0 || !/^\d+$/.test(wire.slice(dot + 1))) throw new SubjectError(`not a partitioned subject: ${JSON.stringify(wire)}`);
  return wire.slice(0, dot);
}

/**
 * The JetStream filter subject for one partition of a stream, optionally restricted to one
 * channel (in/out only): e.g. `exoclaw.in.*.*.*.7` or `exoclaw.out.telegram.*.*.7`.
 */
export function partitionFilter(stream: StreamName, partition: number, channel?: string): string {
  const wild = Array.from({ length: STREAM_TOKENS[stream] }, () => "*");
  if (channel !== undefined) {
    if (stream === "events") throw new SubjectError("a channel filter applies to the in and out streams only");
    wild[0] = escapeToken(channel);
  }
  return `${SUBJECT_ROOT}.${stream}.${wild.join(".")}.${partition}`;
}

/** True when a logical subject belongs to `stream` and, if given, to `channel`. */
export function matchesFilter(subject: string, stream: StreamName, channel?: string): boolean {
  let parsed: ParsedSubject;
  try {
    parsed = parseSubject(subject);
  } catch {
    return false;
  }
  if (parsed.stream !== stream) return false;
  return channel === undefined || (parsed.stream !== "events" && parsed.channel === channel);
}
