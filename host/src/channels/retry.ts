/** Retrying outbound sends: platforms have transient failures (rate limits, 5xx, timeouts). */
import { sleep } from "../util/index.js";

/** Waits before each retry of a failed send, ms: three retries, then give up. */
export const SEND_BACKOFF_MS: readonly number[] = [200, 800, 2000];

/**
 * Runs `attempt` until it succeeds, waiting `backoffMs[i]` before retry i+1.
 * @param onRetry told about each failure that will be retried (for logs)
 * @param permanent a failure it says yes to is thrown at once (not retried)
 * @returns the first success
 * @throws the last failure when every attempt failed, or the signal's reason when aborted
 */
export async function withRetry<T>(
  attempt: () => Promise<T>,
  backoffMs: readonly number[] = SEND_BACKOFF_MS,
  onRetry?: (err: unknown, attemptNo: number) => void,
  signal?: AbortSignal,
  permanent?: (err: unknown) => boolean,
): Promise<T> {
  for (let i = 0; ; i++) {
    try {
      return await attempt();
    } catch (err) {
      if (signal?.aborted || i >= backoffMs.length || permanent?.(err) === true) throw err;
      onRetry?.(err, i + 1);
      await sleep(backoffMs[i]!, signal);
    }
  }
}
