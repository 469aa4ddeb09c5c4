import { DuplicateEventError, StoreError } from "./errors.js";
import { redactEvent } from "./redact.js";
import { parseSessionKey } from "./session-key.js";
import {
  EVENT_KINDS,
  type EventKind,
  type NewSessionEvent,
  type SessionEvent,
  type SessionEventOf,
  type SessionKeyParts,
  type SessionLogOptions,
} from "./types.js";

/**
 * The free-text field of each kind that has one. Back ends store it in a separate, full-text
 * indexed column and search over it.
 */
export const TEXT_FIELD: Partial<Record<EventKind, string>> = {
  message_received: "content",
  assistant_text: "text",
  tool_result: "content",
  error: "message",
  compaction: "summary",
};

/** An event checked and completed for writing: `at` filled in, redaction applied. */
export type PreparedEvent = NewSessionEvent & { at: number };

/** A validated append: the key's parts and the prepared events, with batch facts back ends need. */
export interface PreparedAppend {
  parts: SessionKeyParts;
  events: PreparedEvent[];
  /** Dedupe keys of the batch (already checked to be distinct within it). */
  platformKeys: string[];
  idempotencyKeys: string[];
  /**
   * Effect of the batch on the session's open-turn count `o`: `o' = max(openFloor, o + openDelta)`
   * (see {@link openTurnsEffect}).
   */
  openFloor: number;
  openDelta: number;
  /** Index in the batch of the last `reset`, or -1. */
  lastResetIndex: number;
  /** Index of the last `compaction` after `lastResetIndex`, or -1. */
  lastCompactionIndex: number;
  /**
   * The smallest last-seq the session must have for every compaction in the batch to cover only
   * earlier events (`upToSeq < own seq`); 0 when there is no compaction.
   */
  minLastSeq: number;
}

const isStr = (v: unknown): v is string => typeof v === "string";
const isInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v);
const isCount = (v: unknown): v is number => isInt(v) && v >= 0;

function invalid(i: number, what: string): never {
  throw new StoreError("invalid_argument", `event ${i}: ${what}`);
}

function checkData(i: number, e: NewSessionEvent): void {
  const d = e.data as unknown;
  if (d === null || typeof d !== "object" || Array.isArray(d)) invalid(i, `${e.kind}: data must be an object`);
  const o = d as Record<string, unknown>;
  const need = (field: string, ok: (v: unknown) => boolean, type: string) => {
    if (!ok(o[field])) invalid(i, `${e.kind}.${field} must be ${type}`);
  };
  const optional = (field: string) => {
    if (o[field] !== undefined && !(isStr(o[field]) && (o[field] as string).length > 0))
      invalid(i, `${e.kind}.${field} must be a non-empty string when present`);
  };
  switch (e.kind) {
    case "message_received":
      need("content", isStr, "a string");
      for (const f of ["channel", "account", "peer"]) need(f, isStr, "a string");
      optional("platformMessageId");
      optional("idempotencyKey");
      optional("thread");
      optional("sender");
      optional("senderName");
      if (o.awaitsReply !== undefined) {
        if (o.awaitsReply !== true) invalid(i, "message_received.awaitsReply must be true when present");
        if (o.idempotencyKey === undefined) invalid(i, "message_received.awaitsReply needs an idempotencyKey (the outbox settles replies by it)");
      }
      break;
    case "turn_started":
      need("runId", isStr, "a string");
      break;
    case "assistant_text":
      need("text", isStr, "a string");
      break;
    case "tool_use":
      need("id", isStr, "a string");
      need("name", isStr, "a string");
      if (o.input === undefined) invalid(i, "tool_use.input is required (use null for none)");
      break;
    case "tool_result":
      need("toolUseId", isStr, "a string");
      need("content", isStr, "a string");
      need("isError", (v) => typeof v === "boolean", "a boolean");
      break;
    case "usage":
      need("inputTokens", isCount, "a non-negative integer");
      need("outputTokens", isCount, "a non-negative integer");
      for (const k of ["cacheReadTokens", "cacheWriteTokens"] as const)
        if (o[k] !== undefined && !isCount(o[k])) invalid(i, `usage.${k} must be a non-negative integer when present`);
      if (o.costUsd !== undefined && !(typeof o.costUsd === "number" && Number.isFinite(o.costUsd) && o.costUsd >= 0))
        invalid(i, "usage.costUsd must be a non-negative number when present");
      for (const k of ["provider", "model"] as const) if (o[k] !== undefined && !isStr(o[k])) invalid(i, `usage.${k} must be a string when present`);
      break;
    case "error":
      need("code", isInt, "an integer");
      need("message", isStr, "a string");
      break;
    case "turn_ended":
      need("runId", isStr, "a string");
      need("stopReason", isStr, "a string");
      break;
    case "compaction":
      need("summary", isStr, "a string");
      need("upToSeq", isCount, "a non-negative integer");
      break;
    case "reset":
      if (o.reason !== undefined && !isStr(o.reason)) invalid(i, "reset.reason must be a string when present");
      break;
    case "approval_pending":
      for (const f of ["id", "toolUseId", "tool"]) need(f, isStr, "a string");
      need("expiresAt", isCount, "a non-negative integer");
      optional("approver");
      if (o.input === undefined) invalid(i, "approval_pending.input is required (use null for none)");
      break;
    case "approval_resolved":
      need("id", isStr, "a string");
      need("approved", (v) => typeof v === "boolean", "a boolean");
      need("by", isStr, "a string");
      break;
  }
  try {
    JSON.stringify(d);
  } catch (err) {
    invalid(i, `${e.kind}: data is not JSON-serialisable (${(err as Error).message})`);
  }
}

/** The platform dedupe key of `message_received` data: channel, account and id, unambiguous. */
export function platformKey(channel: string, account: string, platformMessageId: string): string {
  return JSON.stringify([channel, account, platformMessageId]);
}

/**
 * The open-turn effect of a batch as `o' = max(floor, o + delta)`. Each `message_received` adds
 * one; each `turn_ended`/`error` removes one if any is open; `reset` sets zero. Composing
 * `o -> max(0, o + d)` steps keeps that form, so one UPDATE applies a whole batch exactly.
 */
export function openTurnsEffect(events: readonly { kind: EventKind }[]): { floor: number; delta: number } {
  // Start from the identity o -> max(-inf, o + 0); "-inf" is a number far below any count.
  const NEG = -Number.MAX_SAFE_INTEGER;
  let floor = NEG;
  let delta = 0;
  const step = (d: number) => {
    // max(0, max(F, o + D) + d) = max(max(0, F + d), o + D + d)
    floor = Math.max(0, floor + d);
    delta += d;
  };
  for (const e of events) {
    if (e.kind === "message_received") step(1);
    else if (e.kind === "turn_ended" || e.kind === "error") step(-1);
    else if (e.kind === "reset") {
      floor = 0;
      delta = NEG;
    }
  }
  return { floor: Math.max(0, floor), delta: Math.max(delta, NEG) };
}

/**
 * Validates and completes an append (pure apart from the clock): checks the key and every
 * event, fills `at`, applies the redactor, collects dedupe keys.
 * @throws StoreError `invalid_argument`; DuplicateEventError when the batch repeats a dedupe key
 */
export function prepareAppend(sessionKey: string, events: readonly NewSessionEvent[], options: SessionLogOptions): PreparedAppend {
  const parts = parseSessionKey(sessionKey);
  if (!Array.isArray(events)) throw new StoreError("invalid_argument", "events must be an array");
  const now = options.now ?? Date.now;
  const redactor = options.redact === true ? (e: NewSessionEvent) => redactEvent(e) : typeof options.redact === "function" ? options.redact : undefined;
  const prepared: PreparedEvent[] = [];
  const platformKeys: string[] = [];
  const idempotencyKeys: string[] = [];
  let lastResetIndex = -1;
  let lastCompactionIndex = -1;
  let minLastSeq = 0;
  events.forEach((raw, i) => {
    if (raw === null || typeof raw !== "object") invalid(i, "must be an object");
    if (!EVENT_KINDS.includes(raw.kind)) invalid(i, `unknown kind ${JSON.stringify(raw.kind)}`);
    if (raw.at !== undefined && !isCount(raw.at)) invalid(i, "at must be a non-negative integer (ms since the epoch)");
    if (raw.runId !== undefined && !isStr(raw.runId)) invalid(i, "runId must be a string");
    checkData(i, raw);
    const e = (redactor ? redactor(raw) : raw) as NewSessionEvent;
    const out = { kind: e.kind, data: e.data, at: raw.at ?? now(), ...(e.runId !== undefined ? { runId: e.runId } : {}) } as PreparedEvent;
    prepared.push(out);
    if (out.kind === "message_received") {
      const d = out.data;
      if (d.platformMessageId !== undefined) {
        const k = platformKey(d.channel, d.account, d.platformMessageId);
        if (platformKeys.includes(k)) throw new DuplicateEventError("platformMessageId", d.platformMessageId);
        platformKeys.push(k);
      }
      if (d.idempotencyKey !== undefined) {
        if (idempotencyKeys.includes(d.idempotencyKey)) throw new DuplicateEventError("idempotencyKey", d.idempotencyKey);
        idempotencyKeys.push(d.idempotencyKey);
      }
    } else if (out.kind === "reset") {
      lastResetIndex = i;
      lastCompactionIndex = -1;
    } else if (out.kind === "compaction") {
      lastCompactionIndex = i;
      // Own seq is last + 1 + i; it must be above upToSeq.
      minLastSeq = Math.max(minLastSeq, out.data.upToSeq - i);
    }
  });
  const { floor, delta } = openTurnsEffect(prepared);
  return { parts, events: prepared, platformKeys, idempotencyKeys, openFloor: floor, openDelta: delta, lastResetIndex, lastCompactionIndex, minLastSeq };
}

/** Throws the error for a compaction whose `upToSeq` is not below its own seq. */
export function compactionRangeError(lastSeq: number, minLastSeq: number): StoreError {
  return new StoreError(
    "invalid_argument",
    `compaction.upToSeq must be below the compaction's own seq (the session's last seq is ${lastSeq}; the batch needs at least ${minLastSeq})`,
  );
}

/** Splits an event's free text out of its data (for storage); `text` is undefined for kinds without one. */
export function splitText(e: { kind: EventKind; data: object }): { text?: string; rest: Record<string, unknown> } {
  const field = TEXT_FIELD[e.kind];
  const data = e.data as Record<string, unknown>;
  if (!field) return { rest: { ...data } };
  // Copied without the field rather than spread then `delete`d: a deleted property that is not the
  // last one added turns the object into a slow dictionary, which `JSON.stringify` then walks for
  // every stored event. Same keys in the same order (own enumerable string keys) as the spread.
  const rest: Record<string, unknown> = {};
  for (const k of Object.keys(data)) if (k !== field) rest[k] = data[k];
  return { text: Object.hasOwn(data, field) ? (data[field] as string) : undefined, rest };
}

/** Inverse of {@link splitText}. */
export function joinText(kind: EventKind, rest: Record<string, unknown>, text: string | undefined): Record<string, unknown> {
  const field = TEXT_FIELD[kind];
  return field && text !== undefined ? { ...rest, [field]: text } : rest;
}

/**
 * Messages whose turn never finished (pure). Walks the events in seq order: `reset` drops every
 * open message; `message_received` opens one; `turn_ended` or `error` closes the open message
 * with the same run id (the event's `runId`, or `turn_ended.data.runId`) if there is one, else
 * the oldest open message. The runtime runs a session's turns one at a time in arrival order,
 * so oldest-first matches even when messages carry no run id. A failed turn must end with
 * `error` *instead of* `turn_ended`.
 */
export function pendingMessages(events: readonly SessionEvent[]): SessionEventOf<"message_received">[] {
  let open: SessionEventOf<"message_received">[] = [];
  for (const e of events) {
    if (e.kind === "reset") open = [];
    else if (e.kind === "message_received") open.push(e);
    else if (e.kind === "turn_ended" || e.kind === "error") {
      const runId = e.runId ?? (e.kind === "turn_ended" ? e.data.runId : undefined);
      let idx = runId === undefined ? -1 : open.findIndex((m) => m.runId === runId);
      if (idx < 0 && open.length > 0) idx = 0;
      if (idx >= 0) open.splice(idx, 1);
    }
  }
  return open;
}

/**
 * The cutoff of a `prune` call, validated (every back end checks it the same way).
 * @returns `options.idleBeforeMs`
 * @throws StoreError `invalid_argument` when it is not a finite number
 */
export function pruneCutoff(options: { idleBeforeMs: number }): number {
  const t = options?.idleBeforeMs;
  if (typeof t !== "number" || !Number.isFinite(t)) {
    throw new StoreError("invalid_argument", `prune needs idleBeforeMs, a time in ms since the Unix epoch; got ${JSON.stringify(t)}`);
  }
  return t;
}

/** The seq after which `readHistory` reads, from a session's reset and compaction state. */
export function historyStart(resetSeq: number, compaction: { seq: number; upToSeq: number } | undefined): number {
  return Math.max(resetSeq, compaction ? Math.min(compaction.upToSeq, compaction.seq - 1) : 0);
}

/** Lower-case word tokens for the memory back end's search: letters/digits runs, NFKD, accents removed. */
export function tokenize(text: string): string[] {
  return (
    text
      .normalize("NFKD")
      .replace(/[\u0300-\u036f]/g, "")
      .toLowerCase()
      .match(/[\p{L}\p{N}]+/gu) ?? []
  );
}

/**
 * Scores one event against search terms (every back end: memory, JetStream, SurrealDB after its
 * engine-side filter): every term must occur in the event's text field, as a word or, for a term
 * of 3 or more characters, as the start of one ("persist" finds "persisted"; a whole word counts
 * twice as much as a prefix); the score is the sum over the terms over the square root of the
 * field's token count. Pure.
 * @param terms lower-cased tokens, as `tokenize` returns them
 * @returns the score, or `undefined` when the event has no text field or misses a term
 */
export function tokenMatchScore(event: SessionEvent, terms: readonly string[]): number | undefined {
  const field = TEXT_FIELD[event.kind];
  if (!field) return undefined;
  const tokens = tokenize((event.data as unknown as Record<string, string>)[field]!);
  let score = 0;
  for (const t of terms) {
    let n = 0;
    for (const x of tokens)
      if (x === t) n += 2;
      else if (t.length >= 3 && x.startsWith(t)) n += 1;
    if (n === 0) return undefined;
    score += n;
  }
  return score / Math.sqrt(tokens.length);
}

/** Orders search hits: best score first, then by session key and sequence number. */
export function compareHits(a: { event: SessionEvent; score: number }, b: { event: SessionEvent; score: number }): number {
  return b.score - a.score || a.event.sessionKey.localeCompare(b.event.sessionKey) || a.event.seq - b.event.seq;
}
