/**
 * One poll loop (a channel account whose plugin exports `poll`, e.g. Telegram `getUpdates`):
 * poll with the persisted cursor, admit the messages exactly like webhook messages, and only
 * once every one is journaled or refused persist the new cursor. A crash in between re-polls
 * the same messages, and their idempotency keys answer each once.
 */
import { readCursor, writeCursor } from "./cursor.js";
import { checkPollResult } from "./messages.js";
import { errorMessage, sleep } from "../util/index.js";
import type { Admission, ChannelLogger } from "./types.js";

/** Longest wait after repeated failures, ms. */
export const MAX_POLL_BACKOFF_MS = 30_000;

/** What a {@link Poller} needs. */
export interface PollerOptions {
  channel: string;
  account: string;
  /** Pause between polls that returned no message, ms. */
  intervalMs: number;
  cursorFile: string;
  logger: ChannelLogger;
  /** Whether the plugin is loaded and exports `poll` now (it may be hot-loaded later). */
  ready(): boolean;
  /** Calls the plugin's `poll` (PollRequest -> PollResult). */
  poll(cursor: string | undefined, signal: AbortSignal): Promise<unknown>;
  /** Admits the messages in order; resolves when each is journaled or refused. */
  admit(messages: unknown[]): Promise<Admission[]>;
}

/** A poll loop; `start` once, `stop` to end it. */
export class Poller {
  private readonly abort = new AbortController();
  private loop: Promise<void> | null = null;

  constructor(private readonly o: PollerOptions) {}

  start(): void {
    this.loop ??= this.run();
  }

  /** Ends the loop: a poll in flight is aborted, messages already returned are still admitted. */
  async stop(): Promise<void> {
    this.abort.abort(new Error("poller stopped"));
    await this.loop;
  }

  private async run(): Promise<void> {
    const { channel, account, logger } = this.o;
    const signal = this.abort.signal;
    let cursor: string | undefined;
    let cursorLoaded = false;
    let failures = 0;
    let waitingForPlugin = false;
    while (!signal.aborted) {
      let delay = this.o.intervalMs;
      try {
        if (!cursorLoaded) {
          cursor = await readCursor(this.o.cursorFile);
          cursorLoaded = true;
        }
        if (!this.o.ready()) {
          if (!waitingForPlugin) logger.warn({ channel, account }, "poll: the channel plugin is not loaded or does not export poll; waiting");
          waitingForPlugin = true;
        } else {
          waitingForPlugin = false;
          const raw = await this.o.poll(cursor, signal);
          const result = checkPollResult(raw);
          if (typeof result === "string") throw new Error(`the plugin returned a malformed poll result: ${result}`);
          // Admitted even when stopping: the platform considers them delivered once the cursor moves.
          const admissions = await this.o.admit(result.messages);
          const retry = admissions.find((a) => a.kind === "retry");
          if (retry !== undefined) throw new Error(`a message could not be journaled (${retry.reason}); polling again from the same cursor`);
          if (result.cursor !== undefined && result.cursor !== cursor) {
            await writeCursor(this.o.cursorFile, result.cursor);
            cursor = result.cursor;
          }
          if (failures > 0) logger.info({ channel, account, failures }, "poll recovered");
          failures = 0;
          // A full batch suggests more waiting: poll again at once.
          if (result.messages.length > 0) delay = 0;
        }
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        delay = Math.min(MAX_POLL_BACKOFF_MS, Math.max(this.o.intervalMs, 500) * 2 ** Math.min(failures - 1, 16));
        logger.warn({ channel, account, failures, retryInMs: delay, error: errorMessage(err) }, "poll failed; backing off");
      }
      if (delay > 0) await sleep(delay, signal).catch(() => {});
    }
  }
}
