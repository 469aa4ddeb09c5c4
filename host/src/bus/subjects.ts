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

// Token escaping lives in util/ (the JetStream session log in store/ uses it too); re-exported here
// so the bus keeps one public name for it.
import { escapeToken, unescapeToken, SubjectError } from "../util/index.js";
export { escapeToken, unescapeToken, SubjectError };

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
export type ParsedSubject = ({ stream: "in" | "out" } & Address) | { stream: "events"; agent: string };

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
