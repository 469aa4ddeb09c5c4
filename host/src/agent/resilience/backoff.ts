/**
 * Backoff between attempts of one model call (pure): "full jitter" exponential backoff — a
 * uniformly random wait in `[0, min(maxMs, baseMs * 2^retry))` — so concurrent turns that failed
 * together do not retry together (source: AWS Architecture Blog, "Exponential Backoff And
 * Jitter", 2015). A provider's `Retry-After` is a floor, never shortened by the jitter.
 */

/** The retry schedule of one provider. */
export interface BackoffPolicy {
  /** First backoff ceiling, ms; doubled per retry. */
  baseMs: number;
  /** Largest backoff, ms; also the longest `Retry-After` honoured: a longer one moves on to the next model instead. */
  maxMs: number;
}

/**
 * The wait before retry number `retry` (1 = the first retry), ms.
 * @param retryAfterMs the provider's `Retry-After` (or a key's cooldown), ms: the wait is at least this
 * @param random a number in [0, 1) (default `Math.random`; tests pass a fixed one)
 */
export function backoffMs(retry: number, policy: BackoffPolicy, retryAfterMs = 0, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.max(0, retry - 1));
  const jitter = Math.floor(random() * ceiling);
  return Math.max(retryAfterMs, jitter);
}

/**
 * Resolves after `ms`, or rejects with the signal's reason as soon as `signal` aborts (a turn
 * abort or deadline ends a backoff wait at once).
 */
export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.reject(signal.reason);
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
