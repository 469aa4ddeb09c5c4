import { describe, expect, it } from "vitest";
import { tapStream, type StreamTap } from "../../host/src/agent/stream-tap.js";

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

type Wrap = typeof generatorTap<number>;

/** Runs one scenario through `wrap`: what the consumer and the tap saw, in order. */
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
  try {
    if (kind === "return-first") {
      const r = await stream[Symbol.asyncIterator]().return?.();
      log.push(`returned done=${r?.done}`);
      return log;
    }
    for await (const ev of stream) {
      log.push(`got ${ev}`);
      if (kind === "early" && ev === 1) break;
    }
    log.push("consumer done");
  } catch (err) {
    log.push(`consumer caught ${(err as Error).message}`);
  }
  return log;
}

describe("tapStream", () => {
  for (const kind of ["complete", "throw", "early", "open-fails", "return-first", "end-fails"] as const) {
    it(`behaves as the async-generator wrapper: ${kind}`, async () => {
      const expected = await scenario(generatorTap, kind);
      expect(await scenario(tapStream, kind)).toEqual(expected);
    });
  }

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
