/**
 * The reply outbox's sender (docs/reliability.md, "A crash between answer and reply"): sends a
 * turn's reply (or failure notice, or a refusal) through the channel plugin's `send`, one peer's
 * messages in order, retrying transient failures without giving up, and settles the message's
 * entry in the store's outbox (`SessionLog.settleReplies`) once it went out or was given up.
 *
 * The store is the source of truth: a channel message journaled with `awaitsReply` is owed a
 * reply until it is settled, so a crash anywhere between the turn's end and the settle makes the
 * next process send it again (`ChannelService.resumeReplies`). Settles are written in batches
 * (one store write per `SETTLE_BATCH` keys or `settleDelayMs`): losing one in a crash only
 * causes that reply to be sent again — at least once, with the same reply id.
 */
import { setMaxListeners } from "node:events";
import { isPermanentChannelFailure } from "../plugins/index.js";
import { errorMessage, KeyedChain, sleep } from "../util/index.js";
import type { OutboundMessage } from "./types.js";

/**
 * Waits before each retry of a reply that failed for a transient reason, ms; the last value
 * repeats for ever (a platform down for an hour gets its replies when it is back).
 */
export const REPLY_BACKOFF_MS: readonly number[] = [200, 800, 2000, 5000, 15_000, 30_000];

/** Settled keys written to the store in one call at most. */
const SETTLE_BATCH = 256;

/** What kind of message a reply is (logs and counters). */
export type ReplyKind = "reply" | "refusal" | "failure notice";

/** One message to send: where, what, and the outbox entry it settles. */
export interface OutboxMessage {
  channel: string;
  /** The plugin's `send` input, with `replyId` when the message answers an inbound one. */
  message: OutboundMessage;
  what: ReplyKind;
  /**
   * The platform id of the reply's streamed message (`stream = "edit"`, stream-edit.ts): the
   * reply goes out as the final edit of that message instead of a new one.
   */
  editOf?: string;
}

/** Options of {@link ReplyOutbox}. */
export interface ReplyOutboxOptions {
  /**
   * Calls the channel plugin's `send` once (or, with `editOf`, makes the streamed message's final
   * edit: stream-edit.ts `sendFinal`). @throws the plugin's (or the host's) error
   */
  send(channel: string, message: OutboundMessage, signal: AbortSignal, editOf?: string): Promise<void>;
  /** Whether a failed send will fail again however often it is retried (see `isPermanentSendError`). */
  permanent(err: unknown): boolean;
  /** Settles outbox entries by idempotency key (`SessionLog.settleReplies`). */
  settle(keys: readonly string[]): Promise<void>;
  /** Retry waits, ms (the last repeats); default {@link REPLY_BACKOFF_MS}. */
  backoffMs?: readonly number[];
  /** How long settled keys wait to be written together, ms; default 20. */
  settleDelayMs?: number;
  /** A message went out. */
  onSent(m: OutboxMessage): void;
  /** A send failed and will be retried after `waitMs`. */
  onRetry(m: OutboxMessage, attempt: number, waitMs: number, err: unknown): void;
  /** A message was given up: a permanent failure (dead letter). */
  onDead(m: OutboxMessage, attempts: number, err: unknown): void;
  logger: { warn(o: object, m: string): void };
}

/**
 * Per-peer ordered, retrying sender with batched settles. Different peers send in parallel;
 * within one peer a message (with its retries) is never overtaken by the next one.
 */
export class ReplyOutbox {
  /** Last job queued per peer key. */
  /** Each peer's jobs, in order. */
  private readonly tails = new KeyedChain();
  /** Jobs queued or running (for `idle`). */
  private readonly jobs = new Set<Promise<void>>();
  private readonly toSettle: string[] = [];
  private settleTimer: NodeJS.Timeout | undefined;
  private settling: Promise<void> = Promise.resolve();
  private readonly closer = new AbortController();
  private readonly backoff: readonly number[];

  constructor(private readonly options: ReplyOutboxOptions) {
    this.backoff = options.backoffMs ?? REPLY_BACKOFF_MS;
    // Every send in flight or waiting for the plugin listens on it: as many as replies owed at once.
    setMaxListeners(0, this.closer.signal);
  }

  /**
   * Queues a job in its peer's order: `produce` runs when the peer's earlier jobs are done and
   * returns the message to send (or undefined: nothing to send); then `key`, when given, is
   * settled in the store — also after nothing was sent or the message was given up, not when
   * `produce` threw (the entry stays owed for the next process) or the outbox closed meanwhile.
   */
  push(peerKey: string, key: string | undefined, produce: () => Promise<OutboxMessage | undefined>): void {
    const job = this.tails.run(peerKey, async () => {
      if (this.closer.signal.aborted) return;
      let m: OutboxMessage | undefined;
      try {
        m = await produce();
      } catch (err) {
        this.options.logger.warn({ key, error: errorMessage(err) }, "could not work out a reply; it stays in the outbox for the next start");
        return;
      }
      if (m !== undefined && !(await this.deliver(m))) return;
      if (key !== undefined) this.settleLater(key);
    });
    this.jobs.add(job);
    void job.finally(() => this.jobs.delete(job));
  }

  /** Sends with retries. @returns true when sent or given up, false when the outbox closed first */
  private async deliver(m: OutboxMessage): Promise<boolean> {
    const signal = this.closer.signal;
    for (let attempt = 1; ; attempt++) {
      try {
        await this.options.send(m.channel, m.message, signal, m.editOf);
        this.options.onSent(m);
        return true;
      } catch (err) {
        if (signal.aborted) return false;
        if (this.options.permanent(err)) {
          this.options.onDead(m, attempt, err);
          return true;
        }
        const wait = this.backoff[Math.min(attempt - 1, this.backoff.length - 1)] ?? 1000;
        this.options.onRetry(m, attempt, wait, err);
        try {
          await sleep(wait, signal);
        } catch {
          return false;
        }
      }
    }
  }

  private settleLater(key: string): void {
    this.toSettle.push(key);
    if (this.toSettle.length >= SETTLE_BATCH) this.flushSettles();
    else this.settleTimer ??= setTimeout(() => this.flushSettles(), this.options.settleDelayMs ?? 20);
  }

  /** Writes the settled keys collected so far (one store call per batch, in order). */
  private flushSettles(): Promise<void> {
    if (this.settleTimer !== undefined) clearTimeout(this.settleTimer);
    this.settleTimer = undefined;
    if (this.toSettle.length === 0) return this.settling;
    const keys = this.toSettle.splice(0);
    this.settling = this.settling.then(() =>
      this.options.settle(keys).catch((err: unknown) =>
        // Only costs a second send of these replies after the next restart (same reply ids).
        this.options.logger.warn(
          { keys: keys.length, error: errorMessage(err) },
          "could not mark replies as sent in the store; they are sent again after a restart",
        ),
      ),
    );
    return this.settling;
  }

  /** Waits until no job is queued or running, at most `timeoutMs`; then writes pending settles. */
  async idle(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.jobs.size > 0 && Date.now() < deadline) {
      await Promise.race([Promise.allSettled([...this.jobs]), new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))]);
    }
    await this.flushSettles();
  }

  /** Jobs queued or running. */
  get size(): number {
    return this.jobs.size;
  }

  /**
   * Stops: retries waiting are abandoned (their entries stay owed in the store and go out after
   * the next start), sends in flight are aborted; writes the settles collected so far.
   */
  async close(): Promise<void> {
    this.closer.abort(new Error("the reply outbox is closing"));
    await Promise.allSettled([...this.jobs]);
    await this.flushSettles();
  }
}

/**
 * Whether a failed channel `send` will fail again however often it is retried, so the reply is
 * given up (dead-lettered) instead of retried for ever: the plugin crashed on it (`trap`,
 * `memory`), returned something unusable (`malformed`, `output_too_large`), lacks `send`
 * (`no_export`), or reported the failure as permanent (its error text starts with `permanent:`,
 * the SDK's `channelPermanentError`, e.g. the platform answered 400 for this message). A plugin
 * that is not loaded (it may be hot-loaded), busy, slow or unloaded, and any other plugin error
 * (network, 5xx, 429) is transient.
 */
export function isPermanentSendError(err: unknown): boolean {
  return isPermanentChannelFailure(err);
}
