/**
 * Typing indicators while a turn runs: the channel plugin's optional `typing` export is called
 * when a turn for a conversation starts and every {@link TYPING_INTERVAL_MS} until the turn ends
 * (platform indicators expire on their own: Telegram's `sendChatAction` after 5 s, Discord's
 * typing after 10 s, so they are renewed). One keeper per conversation however many turns run in
 * it; a call failing three times in a row gives up for that turn (logged at debug: an indicator is
 * a courtesy, never a reason to delay or fail a reply). Each call is bounded by its own timeout.
 */
import { errorMessage } from "../util/index.js";
import type { ChannelLogger, TypingRequest } from "./types.js";

/** How often the indicator is renewed, ms (under Telegram's 5 s expiry). */
export const TYPING_INTERVAL_MS = 4000;
/** Longest one `typing` call may take, ms. */
const TYPING_CALL_TIMEOUT_MS = 5000;
/** Conversations with an indicator at once; more get none (a burst over many peers). */
const MAX_KEEPERS = 256;

interface Keeper {
  turns: number;
  timer: NodeJS.Timeout | null;
  failures: number;
  inFlight: boolean;
}

/** Starts and stops typing indicators per conversation. */
export class TypingIndicators {
  private readonly keepers = new Map<string, Keeper>();

  constructor(
    private readonly o: {
      logger: ChannelLogger;
      /** Calls the plugin's `typing` for `channel`. */
      call(channel: string, req: TypingRequest, signal: AbortSignal): Promise<unknown>;
      intervalMs?: number;
    },
  ) {}

  /**
   * Shows the indicator in `req`'s conversation until the returned function is called (once the
   * turn ended). Never throws.
   */
  start(channel: string, req: TypingRequest): () => void {
    const key = `${channel}\u0000${req.account}\u0000${req.peer}\u0000${req.thread ?? ""}`;
    let k = this.keepers.get(key);
    if (k === undefined) {
      if (this.keepers.size >= MAX_KEEPERS) return () => {};
      k = { turns: 0, timer: null, failures: 0, inFlight: false };
      this.keepers.set(key, k);
      const keeper = k;
      const tick = (): void => {
        if (keeper.inFlight || keeper.turns === 0) return;
        keeper.inFlight = true;
        this.o
          .call(channel, req, AbortSignal.timeout(TYPING_CALL_TIMEOUT_MS))
          .then(
            () => (keeper.failures = 0),
            (err: unknown) => {
              keeper.failures++;
              this.o.logger.debug(
                { channel, account: req.account, peer: req.peer, failures: keeper.failures, error: errorMessage(err) },
                "typing indicator failed",
              );
              if (keeper.failures >= 3 && keeper.timer !== null) {
                clearInterval(keeper.timer);
                keeper.timer = null;
              }
            },
          )
          .finally(() => (keeper.inFlight = false));
      };
      tick();
      k.timer = setInterval(tick, this.o.intervalMs ?? TYPING_INTERVAL_MS);
      k.timer.unref();
    }
    k.turns++;
    const keeper = k;
    let stopped = false;
    return () => {
      if (stopped) return;
      stopped = true;
      if (--keeper.turns > 0) return;
      if (keeper.timer !== null) clearInterval(keeper.timer);
      this.keepers.delete(key);
    };
  }

  /** Stops every indicator (shutdown). */
  stopAll(): void {
    for (const k of this.keepers.values()) if (k.timer !== null) clearInterval(k.timer);
    this.keepers.clear();
  }
}
