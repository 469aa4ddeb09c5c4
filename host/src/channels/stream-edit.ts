/**
 * Progressive replies (`[channels.<name>] stream = "edit"`, docs/channels.md "Progressive
 * replies"): while a turn streams, the reply's first message is sent once some text has arrived,
 * then edited as the text grows, at most once per interval (and never before a pause the
 * platform asked for); when the turn ends, the reply outbox makes one final edit carrying the
 * turn's whole text (`sendFinal`), sending what does not fit in one platform message as more
 * messages. The host drives the throttle; the plugin only sends and edits (`send`, `edit`).
 *
 * Pure logic ({@link PreviewText}, {@link nextStep}) with the I/O behind {@link StreamIo}, so
 * the throttle is tested without a platform.
 */
import type { EditResult, OutboundMessage } from "./types.js";

/** Characters of streamed text before the first message goes out (a few words, not one letter). */
export const STREAM_FIRST_CHARS = 16;
/**
 * Longest first message, characters: under every platform's one-message limit (Discord 2,000,
 * Telegram 4,096, Slack 40,000), so the first `send` is one message whose id the edits use.
 */
export const FIRST_SEND_MAX_CHARS = 1000;
/** Longest the final edit waits for the throttle, ms (past it the outbox's retries take over). */
export const MAX_FINAL_WAIT_MS = 30_000;
/** Consecutive failed edits after which a reply stops streaming (its final edit still comes). */
const MAX_EDIT_FAILURES = 3;

/**
 * The text a streamed reply shows, from the turn's events (agent `TurnEvent`s: `{type, data}`).
 * It follows the rule of the turn's final text (agent/loop.ts): the text of the last model call
 * that produced any, so text streamed before a tool call is replaced by the next call's text;
 * a failover that discards a partial answer empties it.
 */
export class PreviewText {
  private buf = "";
  /** The next text delta starts a new model call's text. */
  private fresh = false;

  /** Takes one turn event. @returns whether the preview changed */
  push(ev: unknown): boolean {
    if (typeof ev !== "object" || ev === null) return false;
    const { type, data } = ev as { type?: unknown; data?: { delta?: unknown; discard?: unknown } };
    if (type === "text" && typeof data?.delta === "string" && data.delta.length > 0) {
      if (this.fresh) this.buf = "";
      this.fresh = false;
      this.buf += data.delta;
      return true;
    }
    // `usage` closes a model call: the next call's text (after its tool calls) replaces this one.
    if (type === "usage" && this.buf.length > 0) this.fresh = true;
    if (type === "failover" && data?.discard === true && this.buf.length > 0 && !this.fresh) {
      this.buf = "";
      return true;
    }
    return false;
  }

  get text(): string {
    return this.buf;
  }
}

/** Where a streamed reply stands (owned by {@link StreamingReply}; read by {@link nextStep}). */
export interface StreamState {
  /** The platform id of the streamed message; undefined until the first send returned it. */
  messageId: string | undefined;
  /** The text the message shows now (undefined: no message yet). */
  shown: string | undefined;
  /** When the last send or edit was made, ms (epoch). */
  lastAt: number;
  /** No call before this time, ms (epoch): a pause the platform asked for, or after a failure. */
  holdUntil: number;
}

/** Throttle settings. */
export interface StreamLimits {
  /** Least time between two calls (send or edit) of one reply, ms. */
  intervalMs: number;
  /** Characters of text before the first message; default {@link STREAM_FIRST_CHARS}. */
  firstChars?: number;
}

/** What to do now: send the first message, edit it, wait `ms` and ask again, or nothing until more text arrives. */
export type StreamStep = { kind: "send" } | { kind: "edit" } | { kind: "wait"; ms: number } | { kind: "idle" };

/**
 * The throttle (pure): given the state, the preview text and the time, what to do now. The first
 * message goes out once `firstChars` characters (blanks aside) streamed; afterwards an edit
 * whenever the text differs from what is shown and `intervalMs` passed since the last call and
 * no hold is pending.
 */
export function nextStep(s: StreamState, text: string, now: number, limits: StreamLimits): StreamStep {
  const due = Math.max(s.lastAt + limits.intervalMs, s.holdUntil);
  if (s.shown === undefined) {
    if (text.trim().length < (limits.firstChars ?? STREAM_FIRST_CHARS)) return { kind: "idle" };
    return now >= s.holdUntil ? { kind: "send" } : { kind: "wait", ms: s.holdUntil - now };
  }
  if (s.messageId === undefined || text === s.shown || text.length === 0) return { kind: "idle" };
  return now >= due ? { kind: "edit" } : { kind: "wait", ms: due - now };
}

/** The streamed message's I/O. */
export interface StreamIo {
  /** Sends the first message; @returns its platform id (undefined: the platform gave none, so no edits). @throws the plugin's error */
  send(content: string): Promise<string | undefined>;
  /** Records the message id durably with the owed reply before anything else happens (stream-state.ts). @throws when it cannot */
  remember(platformMessageId: string): Promise<void>;
  /** Edits the message. @throws the plugin's error */
  edit(platformMessageId: string, content: string): Promise<EditResult>;
  /** A call failed (logged; streaming goes on or stops, the final reply still comes). */
  failed(what: "send" | "remember" | "edit", err: unknown): void;
  /** Clock, ms (epoch); default Date.now. */
  now?(): number;
}

/**
 * One turn's streamed message: feed it the turn's events ({@link push}); {@link finish} when the
 * turn ended gives the message's id for the final edit. Never throws; a failed first send or
 * three failed edits in a row end the streaming (the final reply then goes as usual).
 */
export class StreamingReply {
  private readonly preview = new PreviewText();
  private readonly state: StreamState = { messageId: undefined, shown: undefined, lastAt: 0, holdUntil: 0 };
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private stopped = false;
  private failures = 0;
  /** Calls made (send + edits), for logs. */
  calls = 0;

  /**
   * @param resume the platform id of a message an earlier run of this turn already streamed
   *   (found in the shared state after a gateway died): it is edited, never sent again
   */
  constructor(
    private readonly io: StreamIo,
    private readonly limits: StreamLimits,
    resume?: string,
  ) {
    if (resume !== undefined) {
      this.state.messageId = resume;
      this.state.shown = "";
    }
  }

  private now(): number {
    return this.io.now?.() ?? Date.now();
  }

  /** Takes one turn event (`{type, data}`); schedules a send or edit when due. */
  push(ev: unknown): void {
    if (this.stopped) return;
    if (this.preview.push(ev)) this.pump();
  }

  private pump(): void {
    if (this.stopped || this.inFlight !== undefined) return;
    const text = this.preview.text;
    const step = nextStep(this.state, text, this.now(), this.limits);
    if (step.kind === "wait") {
      this.timer ??= setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, step.ms);
      this.timer.unref?.();
      return;
    }
    if (step.kind === "idle") return;
    this.inFlight = (step.kind === "send" ? this.sendFirst(text) : this.editTo(text)).finally(() => {
      this.inFlight = undefined;
      this.pump();
    });
  }

  private async sendFirst(text: string): Promise<void> {
    const content = text.length > FIRST_SEND_MAX_CHARS ? text.slice(0, FIRST_SEND_MAX_CHARS) : text;
    this.state.shown = content;
    this.state.lastAt = this.now();
    this.calls++;
    let id: string | undefined;
    try {
      id = await this.io.send(content);
    } catch (err) {
      this.io.failed("send", err);
      this.stopped = true;
      return;
    }
    if (id === undefined) {
      this.stopped = true;
      return;
    }
    try {
      await this.io.remember(id);
    } catch (err) {
      // Still edited while this process lives; a crash now may cost a second message.
      this.io.failed("remember", err);
    }
    this.state.messageId = id;
  }

  private async editTo(text: string): Promise<void> {
    const id = this.state.messageId!;
    this.state.lastAt = this.now();
    this.calls++;
    try {
      const r = await this.io.edit(id, text);
      this.state.shown = text;
      this.failures = 0;
      if (typeof r.retryAfterMs === "number" && r.retryAfterMs > 0) this.state.holdUntil = this.now() + r.retryAfterMs;
    } catch (err) {
      this.io.failed("edit", err);
      this.state.holdUntil = this.now() + this.limits.intervalMs * 2;
      if (++this.failures >= MAX_EDIT_FAILURES) this.stopped = true;
    }
  }

  /**
   * Ends the streaming (the turn ended): no more calls; waits for the one in flight, then until
   * the final edit is due under the same throttle (the interval since the last call, a pause the
   * platform asked for; at most {@link MAX_FINAL_WAIT_MS}).
   * @returns the streamed message's platform id, or undefined when none was sent
   */
  async finish(): Promise<string | undefined> {
    this.stopped = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    await this.inFlight;
    if (this.state.messageId === undefined) return undefined;
    const wait = Math.min(MAX_FINAL_WAIT_MS, Math.max(this.state.lastAt + this.limits.intervalMs, this.state.holdUntil) - this.now());
    if (wait > 0) await new Promise((r) => setTimeout(r, wait).unref?.());
    return this.state.messageId;
  }
}

/** The final delivery's I/O (the plugin's `edit` and `send` through the host). */
export interface FinalIo {
  edit(platformMessageId: string, content: string, signal: AbortSignal): Promise<EditResult>;
  send(message: OutboundMessage, signal: AbortSignal): Promise<void>;
  /** Whether an edit failure means the message is gone or not editable (the plugin's `permanent:`). */
  permanent(err: unknown): boolean;
}

/**
 * Delivers a streamed reply's final text: edits message `editOf` to the whole `message.content`
 * and sends what did not fit (`overflow`) as more messages in the same conversation (with the
 * reply id + `:more`, so a platform that dedupes on it drops a resend). A message that is gone or no longer
 * editable gets the text sent once as a new message. Safe to repeat after a crash: an edit to the
 * same text changes nothing.
 * @returns how the text went out
 * @throws the edit's transient error, or the send's error (the outbox retries)
 */
export async function sendFinal(io: FinalIo, message: OutboundMessage, editOf: string, signal: AbortSignal): Promise<"edited" | "sent"> {
  let overflow: string | undefined;
  try {
    overflow = (await io.edit(editOf, message.content, signal)).overflow;
  } catch (err) {
    if (!io.permanent(err)) throw err;
    await io.send(message, signal);
    return "sent";
  }
  if (typeof overflow === "string" && overflow.length > 0) {
    // Its own reply id (`<reply id>:more`, within the 262 characters): a platform deduping on it
    // drops a resend of the overflow, and never mistakes it for the whole reply sent anew.
    const { replyTo: _answered, replyId, ...rest } = message;
    await io.send({ ...rest, content: overflow, ...(replyId !== undefined ? { replyId: `${replyId.slice(0, 257)}:more` } : {}) }, signal);
  }
  return "edited";
}
