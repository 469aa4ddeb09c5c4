/**
 * Resolves after `ms` milliseconds; with a `signal`, rejects with the signal's reason as soon as
 * it aborts (at once if it already has), and the timer is cleared.
 * @param ms delay, ms (`setTimeout` semantics: negative or NaN waits ~1 ms)
 */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}
