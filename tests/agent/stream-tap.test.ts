import { describe, expect, it } from "vitest";
import {
  expandStream,
  flattenStream,
  Inline,
  mapStream,
  tapStream,
  type StreamExpand,
  type StreamMap,
  type StreamTap,
} from "../../host/src/agent/stream-tap.js";

/** The `async function*` wrapper `tapStream` replaces: its behaviour is the reference. */
function generatorTap<T>(open: () => AsyncIterable<T> | Promise<AsyncIterable<T>>, tap: StreamTap<T>): AsyncIterable<T> {
  return (async function* () {
    const source = await open();
    try {
      for await (const ev of source) {
        tap.event(ev);
        yield ev;
      }
    } finally {
      await tap.end();
    }
  })();
}

/** A source of `n` events that records whether it was closed, optionally failing after `failAfter` events. */
function source(log: string[], n: number, failAfter?: number): AsyncIterable<number> {
  return (async function* () {
    try {
      for (let i = 0; i < n; i++) {
        if (i === failAfter) throw new Error("source failed");
        await Promise.resolve();
        yield i;
      }
    } finally {
      log.push("source closed");
    }
  })();
}

/** The scenario's `open`: fails for "open-fails", else {@link source} with 5 events (failing at the 3rd for "source-fails"). */
const openSource = (kind: string, log: string[]) => async () => {
  if (kind === "open-fails") throw new Error("open failed");
  return source(log, 5, kind === "source-fails" ? 3 : undefined);
};

type Wrap = typeof generatorTap<number>;

/** Runs one scenario through `wrap`: what the consumer and the tap saw, in order. */

/**
 * Consumes `stream` as the turn does and logs what the consumer sees: `return()` before the first
 * event (`returnFirst`, logging `returnLabel(result)`), else every event until `breakAt(event)`,
 * then "consumer done", or the error it caught.
 */
async function consume<T>(
  stream: AsyncIterable<T>,
  log: string[],
  opts: { returnFirst: boolean; returnLabel: (r: IteratorResult<T> | undefined) => string; breakAt: (ev: T) => boolean },
): Promise<void> {
  try {
    if (opts.returnFirst) {
      const r = await stream[Symbol.asyncIterator]().return?.();
      log.push(opts.returnLabel(r));
      return;
    }
    for await (const ev of stream) {
      log.push(`got ${ev}`);
      if (opts.breakAt(ev)) break;
    }
    log.push("consumer done");
  } catch (err) {
    log.push(`consumer caught ${(err as Error).message}`);
  }
}

async function scenario(wrap: Wrap, kind: "complete" | "throw" | "early" | "open-fails" | "return-first" | "end-fails"): Promise<string[]> {
  const log: string[] = [];
  const tap: StreamTap<number> = {
    event: (ev) => log.push(`event ${ev}`),
    end: async () => {
      await Promise.resolve();
      log.push("end");
      if (kind === "end-fails") throw new Error("end failed");
    },
  };
  const open = async () => {
    if (kind === "open-fails") throw new Error("open failed");
    log.push("opened");
    return source(log, 3, kind === "throw" ? 2 : undefined);
  };
  const stream = wrap(open, tap);
  await consume(stream, log, {
    returnFirst: kind === "return-first",
    returnLabel: (r) => `returned done=${r?.done}`,
    breakAt: (ev) => kind === "early" && ev === 1,
  });
  return log;
}

describe("tapStream", () => {
  for (const kind of ["complete", "throw", "early", "open-fails", "return-first", "end-fails"] as const) {
    it(`behaves as the async-generator wrapper: ${kind}`, async () => {
      const expected = await scenario(generatorTap, kind);
      expect(await scenario(tapStream, kind)).toEqual(expected);
    });
  }

  it("answers done after open failed, without opening again", async () => {
    let opens = 0;
    const it = tapStream<number>(
      async () => {
        opens++;
        throw new Error("open failed");
      },
      { event: () => {}, end: () => {} },
    )[Symbol.asyncIterator]();
    await expect(it.next()).rejects.toThrow("open failed");
    expect((await it.next()).done).toBe(true);
    expect(opens).toBe(1);
  });

  it("ends once, and a finished iterator keeps answering done", async () => {
    let ends = 0;
    const it = tapStream(async () => source([], 1), { event: () => {}, end: () => void ends++ })[Symbol.asyncIterator]();
    expect(await it.next()).toEqual({ done: false, value: 0 });
    expect((await it.next()).done).toBe(true);
    expect((await it.next()).done).toBe(true);
    await it.return?.();
    expect(ends).toBe(1);
  });
});

/** The `async function*` adapter shape `mapStream` replaces (providers/anthropic.ts before): the reference. */
function generatorMap<S, T>(open: () => Promise<AsyncIterable<S>>, m: StreamMap<S, T>): AsyncIterable<T> {
  return (async function* () {
    try {
      for await (const ev of await open()) {
        const out = m.map(ev);
        if (out !== undefined) yield out;
      }
      const last = m.end();
      if (last !== undefined) yield last;
    } catch (err) {
      throw m.error(err);
    } finally {
      m.dispose();
    }
  })();
}

type MapKind = "complete" | "source-fails" | "map-fails" | "end-fails" | "early" | "open-fails" | "return-first";

/** One scenario through `wrap`: odd events are dropped, even ones doubled; what everyone saw, in order. */
async function mapScenario(wrap: typeof generatorMap<number, number>, kind: MapKind): Promise<string[]> {
  const log: string[] = [];
  const m: StreamMap<number, number> = {
    map(ev) {
      if (kind === "map-fails" && ev === 2) throw new Error("bad event");
      return ev % 2 === 0 ? ev * 2 : undefined;
    },
    end() {
      if (kind === "end-fails") throw new Error("cut short");
      return -1;
    },
    error: (err) => new Error(`mapped: ${(err as Error).message}`),
    dispose: () => log.push("disposed"),
  };
  const open = openSource(kind, log);
  const stream = wrap(open, m);
  await consume(stream, log, { returnFirst: kind === "return-first", returnLabel: () => "returned", breakAt: (ev) => kind === "early" && ev === 4 });
  // `mapStream` disposes when the source ends, before the last event: compare what, not when.
  return kind === "complete" ? log.filter((l) => l !== "disposed").concat("disposed") : log;
}

describe("mapStream", () => {
  for (const kind of ["complete", "source-fails", "map-fails", "end-fails", "early", "open-fails", "return-first"] as const) {
    it(`behaves as the async-generator adapter: ${kind}`, async () => {
      const expected = await mapScenario(generatorMap, kind);
      expect(await mapScenario(mapStream, kind)).toEqual(expected);
    });
  }
});

/**
 * The `async function*` adapter shape `expandStream` replaces (providers/openai.ts, gemini.ts,
 * ollama.ts before): each source event's events yielded in turn, then what the mapping threw.
 */
function generatorExpand<S, T>(open: () => Promise<AsyncIterable<S>>, m: StreamExpand<S, T>): AsyncIterable<T> {
  const run = function* (f: (emit: (out: T) => void) => void): Generator<T> {
    const outs: T[] = [];
    let thrown: { err: unknown } | undefined;
    try {
      f((o) => outs.push(o));
    } catch (err) {
      thrown = { err };
    }
    yield* outs;
    if (thrown) throw thrown.err;
  };
  return (async function* () {
    try {
      for await (const ev of await open()) yield* run((emit) => m.map(ev, emit));
      yield* run((emit) => m.end(emit));
    } catch (err) {
      throw m.error(err);
    } finally {
      m.dispose();
    }
  })();
}

type ExpandKind = MapKind | "map-fails-after-emitting" | "end-fails-after-emitting" | "early-in-expansion" | "early-at-end";

/**
 * One scenario through `wrap`: event `ev` stands for `10 ev` and, when even, `10 ev + 1`; the end
 * for -1 and -2. What everyone saw, in order.
 */
async function expandScenario(wrap: typeof generatorExpand<number, number>, kind: ExpandKind): Promise<string[]> {
  const log: string[] = [];
  const m: StreamExpand<number, number> = {
    map(ev, emit) {
      if (kind === "map-fails" && ev === 2) throw new Error("bad event");
      emit(ev * 10);
      if (kind === "map-fails-after-emitting" && ev === 2) throw new Error("bad event");
      if (ev % 2 === 0) emit(ev * 10 + 1);
    },
    end(emit) {
      if (kind === "end-fails") throw new Error("cut short");
      emit(-1);
      if (kind === "end-fails-after-emitting") throw new Error("cut short");
      emit(-2);
    },
    error: (err) => new Error(`mapped: ${(err as Error).message}`),
    dispose: () => log.push("disposed"),
  };
  const open = openSource(kind, log);
  const stream = wrap(open, m);
  const breakAt: Partial<Record<ExpandKind, number>> = { early: 30, "early-in-expansion": 20, "early-at-end": -1 };
  await consume(stream, log, { returnFirst: kind === "return-first", returnLabel: () => "returned", breakAt: (ev) => ev === breakAt[kind] });
  // `expandStream` disposes when the source ends, before the end's events: compare what, not when.
  return kind === "complete" || kind === "early-at-end" ? log.filter((l) => l !== "disposed").concat("disposed") : log;
}

describe("expandStream", () => {
  const kinds = [
    "complete",
    "source-fails",
    "map-fails",
    "map-fails-after-emitting",
    "end-fails",
    "end-fails-after-emitting",
    "early",
    "early-in-expansion",
    "early-at-end",
    "open-fails",
    "return-first",
  ] as const;
  for (const kind of kinds) {
    it(`behaves as the async-generator adapter: ${kind}`, async () => {
      const expected = await expandScenario(generatorExpand, kind);
      expect(await expandScenario(expandStream, kind)).toEqual(expected);
    });
  }

  it("a mapping that throws closes the source before the error reaches the consumer", async () => {
    const log = await expandScenario(expandStream, "map-fails-after-emitting");
    expect(log.slice(-4)).toEqual(["got 20", "source closed", "disposed", "consumer caught mapped: bad event"]);
  });

  it("hands over every event of a source event, then keeps answering done", async () => {
    const it = expandStream<number, number>(async () => source([], 3), {
      map: (ev, emit) => {
        emit(ev);
        emit(ev);
      },
      end: () => {},
      error: (err) => err,
      dispose: () => {},
    })[Symbol.asyncIterator]();
    const seen: number[] = [];
    for (let r = await it.next(); !r.done; r = await it.next()) seen.push(r.value);
    expect(seen).toEqual([0, 0, 1, 1, 2, 2]);
    expect((await it.next()).done).toBe(true);
  });
});

type FlattenKind = "complete" | "retry" | "fatal" | "early" | "early-in-own-event" | "return-first";

/**
 * A retrying generator in the shape of resilience/resilient.ts: a marker event, then attempts
 * whose failure (after `failAt` events) is caught and retried once, their `emitted` flag logged.
 * `inline` picks how an attempt's events are passed on: the old `for await` loop or `Inline`.
 */
async function* attempts(log: string[], kind: FlattenKind, inline: boolean): AsyncGenerator<number | Inline<number>> {
  try {
    yield 100;
    for (let attempt = 1; attempt <= 2; attempt++) {
      const failAt = kind === "complete" || kind === "early" || kind === "early-in-own-event" || (kind === "retry" && attempt === 2) ? undefined : 1;
      let emitted = false;
      try {
        const src = source(log, 3, failAt);
        if (inline) {
          const s = new Inline(src);
          try {
            yield s;
          } finally {
            emitted = s.emitted;
          }
        } else {
          for await (const ev of src) {
            emitted = true;
            yield ev;
          }
        }
        log.push(`attempt ${attempt} ok`);
        if (kind === "early-in-own-event") yield 200;
        return;
      } catch (err) {
        log.push(`attempt ${attempt} failed (${(err as Error).message}), emitted ${emitted}`);
        if (kind === "fatal") throw new Error("gave up");
      }
    }
  } finally {
    log.push("generator finally");
  }
}

async function flattenScenario(inline: boolean, kind: FlattenKind): Promise<string[]> {
  const log: string[] = [];
  const gen = attempts(log, kind, inline);
  const stream: AsyncIterable<number> = inline ? flattenStream(gen) : (gen as AsyncIterable<number>);
  await consume(stream, log, {
    returnFirst: kind === "return-first",
    returnLabel: () => "returned",
    breakAt: (ev) => (kind === "early" && ev === 1) || (kind === "early-in-own-event" && ev === 200),
  });
  return log;
}

describe("flattenStream", () => {
  for (const kind of ["complete", "retry", "fatal", "early", "early-in-own-event", "return-first"] as const) {
    it(`behaves as the generator's own for-await loop: ${kind}`, async () => {
      const expected = await flattenScenario(false, kind);
      expect(await flattenScenario(true, kind)).toEqual(expected);
    });
  }
});
