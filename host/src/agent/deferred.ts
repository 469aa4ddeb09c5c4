/** A promise with its resolve and reject functions, for settling it from elsewhere (queued jobs, keyed turns). */

/** A promise and the functions that settle it. */
export interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T) => void;
  reject: (e: unknown) => void;
}

/**
 * A new pending promise with its settlers. Its rejection is marked handled (a job dropped before
 * anyone awaited it must not crash the process with an unhandled rejection); callers still see it.
 */
export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  promise.catch(() => {});
  return { promise, resolve, reject };
}
