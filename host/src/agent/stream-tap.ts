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
      return Promise.resolve(open()).then(
        (s) => {
          if (finished) return done; // returned while opening
          source = s[Symbol.asyncIterator]();
          return source.next().then(step, fail);
        },
        (err) => {
          finished = true; // as a generator that threw before its `try`: done, without `end`
          throw err;
        },
      );
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

/**
 * What {@link mapStream} does with one iteration of a source stream.
 * @typeParam S the source's events
 * @typeParam T the events yielded
 */
export interface StreamMap<S, T> {
  /** One source event: the event to yield for it, or undefined to yield nothing. May throw (then {@link error}). */
  map(ev: S): T | undefined;
  /** The source finished: a last event to yield, or undefined. May throw (a stream cut short; then {@link error}). */
  end(): T | undefined;
  /** What the consumer gets instead of `err` thrown by `open`, the source, {@link map} or {@link end}. */
  error(err: unknown): unknown;
  /** Called once when the iteration ends any way (finished, failed, or the consumer's `return`), after {@link error}. */
  dispose(): void;
}

/**
 * What {@link expandStream} does with one iteration of a source stream: {@link StreamMap} for
 * adapters whose source event may stand for several events (a chunk carrying text and usage,
 * several tool calls in one part list, the tool calls and the stop at the end).
 * @typeParam S the source's events
 * @typeParam T the events yielded
 */
export interface StreamExpand<S, T> {
  /**
   * One source event: `emit` each event to yield for it, in order (none to yield nothing). May
   * throw (then {@link error}); the events emitted before the throw are yielded first, as a
   * generator's `yield`s before its `throw` are.
   */
  map(ev: S, emit: (out: T) => void): void;
  /** The source finished: `emit` the last events, if any. May throw (a stream cut short; then {@link error}, as for {@link map}). */
  end(emit: (out: T) => void): void;
  /** What the consumer gets instead of `err` thrown by `open`, the source, {@link map} or {@link end}. */
  error(err: unknown): unknown;
  /** Called once when the iteration ends any way (finished, failed, or the consumer's `return`), after {@link error}. */
  dispose(): void;
}

/**
 * `open()`'s events mapped by `m`, without an async generator: what a provider adapter written as
 * `async function*` with `try { for await (const ev of await open()) { const out = map(ev); if
 * (out) yield out; } const last = end(); if (last) yield last; } catch (err) { throw error(err); }
 * finally { dispose(); }` does, for one promise per `next()` instead of the generator's queue,
 * await and result objects per event (see {@link tapStream}). One difference: `dispose` runs
 * when the source finishes, before the last event is handed over, not at the consumer's next call.
 *
 * Nothing runs before the first `next()`; a `return()` before it ends the iteration without
 * opening (and without `dispose`, as a generator returned before it started). `return()` later
 * closes the source (`return` of its iterator: the SDK stream then releases the HTTP response).
 *
 * @param open the source, opened at the first `next()`
 * @param m the mapping
 * @returns an async iterable for one iteration
 */
export function mapStream<S, T>(open: () => Promise<AsyncIterable<S>>, m: StreamMap<S, T>): AsyncIterable<T> {
  return expandStream<S, T>(open, {
    map(ev, emit) {
      const out = m.map(ev);
      if (out !== undefined) emit(out);
    },
    end(emit) {
      const last = m.end();
      if (last !== undefined) emit(last);
    },
    error: (err) => m.error(err),
    dispose: () => m.dispose(),
  });
}

/**
 * `open()`'s events, each expanded by `m` into zero or more events, without an async generator:
 * what a provider adapter written as `async function*` with `try { for await (const ev of await
 * open()) { for (const out of map(ev)) yield out; } for (const out of end()) yield out; } catch
 * (err) { throw error(err); } finally { dispose(); }` does (see {@link mapStream}, which is this
 * with at most one event per source event, and shares its one difference: `dispose` runs when the
 * source finishes, before the events emitted then are handed over). The events a source
 * event stands for wait in a queue reused for the whole iteration (no array per source event).
 *
 * Nothing runs before the first `next()`; a `return()` before it ends the iteration without
 * opening (and without `dispose`). `return()` later closes the source (its iterator's `return`:
 * the SDK stream then releases the HTTP response) unless it has finished, and drops the events
 * still queued. A `map` that throws closes the source, as `for await` does when its body throws.
 *
 * @param open the source, opened at the first `next()`
 * @param m the mapping
 * @returns an async iterable for one iteration
 */
export function expandStream<S, T>(open: () => Promise<AsyncIterable<S>>, m: StreamExpand<S, T>): AsyncIterable<T> {
  let source: AsyncIterator<S> | undefined;
  let started = false;
  let finished = false;
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined };
  // Events emitted and not yet handed over: `queue[head..tail)`. The slots are reused, never
  // truncated (setting `length = 0` frees the backing store: one allocation per event again).
  const queue: (T | undefined)[] = [];
  let head = 0;
  let tail = 0;
  // What `map`/`end` threw after emitting events: handled (source closed, error mapped, disposed)
  // once those are handed over, when the generator would have reached its `throw`.
  let thrown: { err: unknown; mapping: boolean } | undefined;
  const emit = (out: T): void => {
    queue[tail++] = out;
  };
  const take = (): IteratorResult<T> => {
    const value = queue[head] as T;
    queue[head++] = undefined; // not kept alive by the queue once handed over
    if (head === tail) head = tail = 0;
    return { done: false, value };
  };
  const clear = () => {
    queue.fill(undefined);
    head = tail = 0;
  };
  const close = () => {
    finished = true;
    m.dispose();
  };

  // Promise reactions, not an async function: an async function per `next()` allocates about as
  // much as the generator step it replaces.
  const fail = async (err: unknown, mapping: boolean): Promise<never> => {
    if (finished) throw err;
    if (mapping) {
      // `map` threw on one of the source's events: close the source, as `for await` does then.
      try {
        await source?.return?.();
      } catch {
        // the error in hand is the one to report, as `for await` does
      }
    }
    const mapped = m.error(err);
    close();
    throw mapped;
  };
  const onError = (err: unknown): Promise<IteratorResult<T>> => fail(err, false);
  const onResult = (r: IteratorResult<S>): IteratorResult<T> | Promise<IteratorResult<T>> => {
    if (finished) return done; // returned meanwhile
    try {
      if (r.done) {
        m.end(emit);
        close();
      } else m.map(r.value, emit);
    } catch (err) {
      if (head === tail) return fail(err, !r.done);
      thrown = { err, mapping: !r.done };
    }
    if (head < tail) return take();
    return r.done ? done : source!.next().then(onResult, onError);
  };
  const pull = (): Promise<IteratorResult<T>> => {
    if (source !== undefined) return source.next().then(onResult, onError);
    return open().then((s) => {
      source = s[Symbol.asyncIterator]();
      return source.next().then(onResult, onError);
    }, onError);
  };

  const iterator: AsyncIterableIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (head < tail) return Promise.resolve(take());
      if (thrown !== undefined) {
        const { err, mapping } = thrown;
        thrown = undefined;
        return fail(err, mapping);
      }
      if (finished) return Promise.resolve(done);
      started = true;
      return pull();
    },
    async return(): Promise<IteratorResult<T>> {
      clear();
      thrown = undefined;
      if (finished) return done;
      if (!started) {
        finished = true;
        return done;
      }
      try {
        await source?.return?.();
      } finally {
        close();
      }
      return done;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}

/**
 * A stream an async generator hands to {@link flattenStream} with `yield new Inline(source)`:
 * its events reach the consumer in the generator's place, without passing through the generator.
 * @typeParam T the events
 */
export class Inline<T> {
  /** Whether `source` yielded an event (read by the generator after the `yield`, as a loop's flag). */
  emitted = false;

  /** @param source the stream whose events are handed over */
  constructor(readonly source: AsyncIterable<T>) {}
}

/**
 * The events of `gen`, with each {@link Inline} it yields replaced by that stream's events: what
 * `for await (const ev of source) { emitted = true; yield ev; }` inside the generator does, but an
 * event costs one promise reaction instead of a generator step (see {@link tapStream}). The
 * generator resumes after its `yield` when the inline stream finishes, and the stream's error is
 * thrown at that `yield` (its `try`/`catch` around the `yield` sees it as it saw the loop's).
 * The consumer's `return()` closes the inline stream, then the generator (its `finally` blocks run).
 *
 * @param gen the generator; it must not be used elsewhere
 * @returns an async iterable for one iteration
 */
export function flattenStream<T>(gen: AsyncGenerator<T | Inline<T>, void, undefined>): AsyncIterable<T> {
  let inline: Inline<T> | undefined;
  let inner: AsyncIterator<T> | undefined;
  let finished = false;
  const done: IteratorReturnResult<undefined> = { done: true, value: undefined };

  const genFailed = (err: unknown): never => {
    finished = true;
    throw err;
  };
  const fromGen = (r: IteratorResult<T | Inline<T>, void>): IteratorResult<T> | Promise<IteratorResult<T>> => {
    if (r.done) {
      finished = true;
      return done;
    }
    const v = r.value;
    if (!(v instanceof Inline)) return r as IteratorYieldResult<T>;
    inline = v;
    try {
      inner = v.source[Symbol.asyncIterator]();
    } catch (err) {
      return onInnerError(err);
    }
    return inner.next().then(onInner, onInnerError);
  };
  const onInner = (r: IteratorResult<T>): IteratorResult<T> | Promise<IteratorResult<T>> => {
    if (finished) return done; // returned meanwhile
    if (r.done) {
      inline = inner = undefined;
      return gen.next().then(fromGen, genFailed);
    }
    inline!.emitted = true;
    return r;
  };
  const onInnerError = (err: unknown): Promise<IteratorResult<T>> => {
    inline = inner = undefined;
    return gen.throw(err).then(fromGen, genFailed);
  };

  const iterator: AsyncIterableIterator<T> = {
    next(): Promise<IteratorResult<T>> {
      if (finished) return Promise.resolve(done);
      if (inner !== undefined) return inner.next().then(onInner, onInnerError);
      return gen.next().then(fromGen, genFailed);
    },
    async return(): Promise<IteratorResult<T>> {
      if (finished) return done;
      finished = true;
      const open = inner;
      inline = inner = undefined;
      try {
        await open?.return?.();
      } finally {
        await gen.return(undefined);
      }
      return done;
    },
    [Symbol.asyncIterator]() {
      return iterator;
    },
  };
  return iterator;
}
