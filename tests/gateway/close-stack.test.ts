/**
 * The CloseStack under the gateway app (host/src/gateway/close-stack.ts): reverse order, a
 * failing close logged without skipping the rest, idempotent close, a hanging close left behind
 * at the deadline while the later ones still start.
 */
import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { CloseStack } from "../../host/src/gateway/index.js";
import { createLogger } from "../../host/src/log/index.js";

/** A real (pino) logger at debug whose JSON lines are kept. */
function capture() {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      lines.push(JSON.parse(String(chunk)));
      cb();
    },
  });
  return { lines, logger: createLogger({ level: "debug", destination }) };
}

describe("CloseStack", () => {
  it("closes the last registered first, awaiting each close before the next", async () => {
    const { logger, lines } = capture();
    const stack = new CloseStack({ logger });
    const order: string[] = [];
    stack.defer("store", () => order.push("store"));
    stack.defer("plugins", async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push("plugins");
    });
    stack.defer("listener", () => order.push("listener"));
    expect(await stack.close()).toEqual({ failed: [], unfinished: [] });
    expect(order).toEqual(["listener", "plugins", "store"]);
    expect(lines.filter((l) => l.msg === "closed").map((l) => l.step)).toEqual(["listener", "plugins", "store"]);
  });

  it("logs a close that throws or rejects and still runs every other close", async () => {
    const { logger, lines } = capture();
    const stack = new CloseStack({ logger });
    const order: string[] = [];
    stack.defer("store", () => order.push("store"));
    stack.defer("bus", () => Promise.reject(new Error("nats went away")));
    stack.defer("plugins", () => order.push("plugins"));
    stack.defer("listener", () => {
      throw new Error("socket exploded");
    });
    const report = await stack.close();
    expect(order).toEqual(["plugins", "store"]);
    expect(report).toEqual({ failed: ["listener", "bus"], unfinished: [] });
    const errors = lines.filter((l) => l.level === 50);
    expect(errors.map((l) => [l.step, l.error, l.msg])).toEqual([
      ["listener", "socket exploded", "closing listener failed"],
      ["bus", "nats went away", "closing bus failed"],
    ]);
  });

  it("is idempotent: a second close gets the first one's result and runs nothing again", async () => {
    const { logger } = capture();
    const stack = new CloseStack({ logger });
    let runs = 0;
    stack.defer("store", () => void runs++);
    const first = stack.close();
    const second = stack.close({ deadlineMs: 1 });
    expect(second).toBe(first);
    await first;
    expect(await stack.close()).toEqual({ failed: [], unfinished: [] });
    expect(runs).toBe(1);
    expect(stack.closing).toBe(true);
    expect(() => stack.defer("late", () => {})).toThrow(/cannot register "late": the stack is already closing/);
  });

  it("at the deadline leaves a hanging close behind, starts the later ones without waiting, and reports both", async () => {
    const { logger, lines } = capture();
    const stack = new CloseStack({ logger });
    const started: string[] = [];
    stack.defer("store", () => {
      started.push("store");
      return new Promise(() => {});
    });
    stack.defer("plugins", () => void started.push("plugins"));
    stack.defer("listener", () => {
      started.push("listener");
      return new Promise(() => {}); // a socket that never closes
    });
    stack.defer("turns", () => void started.push("turns"));
    const report = await stack.close({ deadlineMs: 50 });
    expect(report).toEqual({ failed: [], unfinished: ["listener", "plugins", "store"] });
    expect(started).toEqual(["turns", "listener", "plugins", "store"]);
    expect(lines.some((l) => l.level === 50 && l.step === "listener" && l.deadlineMs === 50)).toBe(true);
  });

  it("logs a close that fails after the deadline left it behind", async () => {
    const { logger, lines } = capture();
    const stack = new CloseStack({ logger });
    let fail: (err: Error) => void = () => {};
    stack.defer("store", () => new Promise((_, reject) => (fail = reject)));
    expect((await stack.close({ deadlineMs: 10 })).unfinished).toEqual(["store"]);
    fail(new Error("late failure"));
    await new Promise((r) => setImmediate(r));
    expect(lines.some((l) => l.msg === "closing store failed" && l.error === "late failure")).toBe(true);
  });
});
