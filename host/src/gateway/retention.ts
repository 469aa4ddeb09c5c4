/**
 * Session retention in a running gateway (`[store] retention`): prunes sessions idle for longer
 * than the configured age once right after start-up, then every `intervalMs`, off the request
 * path (timers that do not keep the process alive; one run at a time). Each run is logged with
 * its counts. See `SessionLog.prune` for what is removed and what is always kept.
 */
import type { Logger } from "pino";
import type { PruneOptions, PruneResult } from "../store/index.js";
import { errorMessage } from "../util/index.js";

/** Options of {@link startRetention}. */
export interface RetentionOptions {
  /** The prune to run (the runtime's, so removed sessions leave its history cache too). */
  prune: (options: PruneOptions) => Promise<PruneResult>;
  /** Sessions idle longer than this go, ms. */
  maxIdleMs: number;
  /** Time between the end of one run and the start of the next, ms. */
  intervalMs: number;
  /** Gets each run's counts (info when something was removed or kept, else debug) and failures (warn). */
  logger: Pick<Logger, "info" | "warn" | "debug">;
  /** Clock, ms epoch; default `Date.now`. */
  now?: () => number;
}

/** A started retention loop. */
export interface Retention {
  /** Stops the loop; a run in progress stops before its next session. Resolves once it has. Idempotent. */
  stop(): Promise<void>;
}

/**
 * Starts pruning: first run on the next turn of the event loop (start-up is not delayed), then
 * every `intervalMs` after the previous run ended. A failed run is logged and retried at the next
 * interval; it never throws out of the loop.
 */
export function startRetention(options: RetentionOptions): Retention {
  const now = options.now ?? Date.now;
  const abort = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  const runOnce = async (): Promise<void> => {
    const t0 = performance.now();
    const idleBeforeMs = now() - options.maxIdleMs;
    try {
      const result = await options.prune({ idleBeforeMs, signal: abort.signal });
      const fields = { ...result, idleBefore: new Date(idleBeforeMs).toISOString(), ms: Math.round(performance.now() - t0) };
      if (result.sessions > 0 || result.kept > 0) options.logger.info(fields, "retention: pruned idle sessions");
      else options.logger.debug(fields, "retention: no idle sessions");
    } catch (err) {
      options.logger.warn({ error: errorMessage(err) }, "retention: pruning idle sessions failed; retrying at the next interval");
    }
  };

  const schedule = (ms: number): void => {
    if (abort.signal.aborted) return;
    timer = setTimeout(() => {
      running = runOnce().finally(() => {
        running = undefined;
        schedule(options.intervalMs);
      });
    }, ms);
    timer.unref();
  };
  schedule(0);

  return {
    async stop() {
      abort.abort();
      clearTimeout(timer);
      await running;
    },
  };
}
