/**
 * What {@link tapStream} calls around one iteration of a stream.
 * @typeParam T the stream's events
 */
export interface StreamTap<T> {
  /** Called with each event, before the consumer gets it; must not throw. */
  event(ev: T): void;
  /**
   * Called once when the iteration ends: the source finished, threw (after the source failed,
   * before the error reaches the consumer), or the consumer stopped early (`return`, after the
   * source's own `return`). The consumer's `next`/`return` settles after the returned promise;
   * a rejection is what the consumer gets then (as a `finally` block that throws would).
   */
  end(): void | Promise<void>;
}

/**
 * `open()`'s events, each shown to `tap.event`, with `tap.end` once at the end: what a wrapper
 * written as `async function*` with `try { for await (const ev of source) { observe(ev); yield
 * ev; } } finally { end(); }` does, without the async generator. Each event then costs one
 * promise reaction instead of an async generator's queue entry, await and result object per
 * layer (the model call's events pass through every wrapper of the provider: metering,
 * resilience, the adapter; measured in docs/architecture.md, "Gateway CPU per turn").
 *
 * As with a generator, nothing runs before the first `next()`: `open` is called then (its
 * rejection reaches the consumer and `end` is not called, as an `await` before the generator's
 * `try`), and a `return()` before it ends the iteration without opening anything.
 *
 * @param open the source, opened at the first `next()`
 * @param tap the observer of the iteration
 * @returns an async iterable for one iteration (a second `[Symbol.asyncIterator]()` returns the same iterator)
 */
export function tapStream<T>(open: () => AsyncIterable<T> | Promise<AsyncIterable<T>>, tap: StreamTap<T>): AsyncIterable<T> {
  let source: AsyncIterator<T> | undefined;
  let finished = false;
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined };

  const finish = async (): Promise<void> => {
    finished = true;
    await tap.end();
  };

  const step = (r: IteratorResult<T>): IteratorResult<T> | Promise<IteratorResult<T>> => {
    if (r.done) return finish().then(() => done);
    tap.event(r.value);
    return r;
  };

  const fail = async (err: unknown): Promise<never> => {
    await finish();
    throw err;
  };

  const iterator: AsyncIterableIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (finished) return Promise.resolve(done);
      if (source !== undefined) return source.next().then(step, fail);
      return Promise.resolve(open()).then((s) => {
        if (finished) return done; // returned while opening
        source = s[Symbol.asyncIterator]();
        return source.next().then(step, fail);
      });
    },
    async return(): Promise<IteratorResult<T>> {
      if (finished) return done;
      if (source === undefined) {
        finished = true; // never opened: nothing to end, as a generator returned before it started
        return done;
      }
      try {
        await source.return?.();
      } finally {
        await finish();
      }
      return done;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
