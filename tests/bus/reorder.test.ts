/**
 * The reorder window's pure logic (host/src/bus/reorder.ts): release order, holding while the
 * clock says so, extension by later signs of an outage, and nothing overtaking a held delivery.
 * Fake timers drive the release timer (no wall-clock waits).
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { intakeOrder, ReorderBuffer, ReorderClock } from "../../host/src/bus/reorder.js";

interface D {
  publishedAt: number;
  seq: number;
  id: string;
}
const d = (id: string, publishedAt: number, seq: number): D => ({ id, publishedAt, seq });

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(1_000_000);
});
afterEach(() => {
  vi.useRealTimers();
});

describe("intakeOrder", () => {
  it("sorts by intake time, then by stream sequence", () => {
    const list = [d("c", 30, 1), d("a", 10, 3), d("b", 10, 2), d("d", 40, 0)];
    expect(list.sort(intakeOrder).map((x) => x.id)).toEqual(["b", "a", "c", "d"]);
  });
});

describe("ReorderClock", () => {
  it("holds for the window from the last extension; 0 never holds", () => {
    const clock = new ReorderClock(5_000);
    expect(clock.holding).toBe(false);
    clock.extend();
    expect(clock.holding).toBe(true);
    expect(clock.remaining()).toBe(5_000);
    vi.advanceTimersByTime(3_000);
    clock.extend(); // a later spooled delivery pushes the end out
    expect(clock.remaining()).toBe(5_000);
    vi.advanceTimersByTime(5_000);
    expect(clock.holding).toBe(false);
    const off = new ReorderClock(0);
    off.extend();
    expect(off.holding).toBe(false);
  });

  it("an extension never shortens the hold", () => {
    let now = 0;
    const clock = new ReorderClock(1_000, () => now);
    clock.extend();
    now = -500; // a clock stepped back
    clock.extend();
    expect(clock.until).toBe(1_000);
  });
});

describe("ReorderBuffer", () => {
  it("passes deliveries through when nothing is held", () => {
    const released: D[][] = [];
    const buf = new ReorderBuffer<D>(new ReorderClock(5_000), (s) => released.push(s));
    expect(buf.offer(d("a", 1, 1))).toBe(false);
    expect(released).toEqual([]);
  });

  it("holds during the window and releases in intake order when it ends (two spools drained one after the other)", () => {
    const clock = new ReorderClock(5_000);
    const released: string[][] = [];
    const buf = new ReorderBuffer<D>(clock, (s) => released.push(s.map((x) => x.id)));
    clock.extend();
    // gateway A's spool (messages 0, 2, 4 of a peer) reached the stream before gateway B's (1, 3)
    for (const x of [d("m0", 100, 10), d("m2", 300, 11), d("m4", 500, 12), d("m1", 200, 13), d("m3", 400, 14)]) expect(buf.offer(x)).toBe(true);
    expect(buf.held).toHaveLength(5);
    vi.advanceTimersByTime(4_999);
    expect(released).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(released).toEqual([["m0", "m1", "m2", "m3", "m4"]]);
    expect(buf.held).toHaveLength(0);
  });

  it("waits on when the clock is extended meanwhile", () => {
    const clock = new ReorderClock(1_000);
    const released: string[][] = [];
    const buf = new ReorderBuffer<D>(clock, (s) => released.push(s.map((x) => x.id)));
    clock.extend();
    buf.offer(d("b", 2, 2));
    vi.advanceTimersByTime(800);
    clock.extend(); // another spooled delivery
    buf.offer(d("a", 1, 3));
    vi.advanceTimersByTime(300);
    expect(released).toEqual([]);
    vi.advanceTimersByTime(700);
    expect(released).toEqual([["a", "b"]]);
  });

  it("a delivery offered after the window, before the timer fired, goes out behind the held ones", () => {
    let now = 0;
    const clock = new ReorderClock(1_000, () => now);
    const released: string[][] = [];
    const buf = new ReorderBuffer<D>(clock, (s) => released.push(s.map((x) => x.id)));
    clock.extend();
    buf.offer(d("held", 5, 1));
    now = 2_000; // the window is over; the (fake) timer has not run
    expect(buf.offer(d("late", 9, 2))).toBe(true);
    expect(released).toEqual([["held", "late"]]);
    expect(buf.offer(d("next", 10, 3))).toBe(false);
  });

  it("take() hands the held deliveries back without releasing them", () => {
    const clock = new ReorderClock(1_000);
    const released: D[][] = [];
    const buf = new ReorderBuffer<D>(clock, (s) => released.push(s));
    clock.extend();
    buf.offer(d("x", 1, 1));
    expect(buf.take().map((x) => x.id)).toEqual(["x"]);
    vi.advanceTimersByTime(2_000);
    expect(released).toEqual([]);
  });
});
