// time through the real sandbox: zone rules around DST transitions, fixed offsets, ISO 8601
// parsing, calendar-aware addition, differences, and the clock capability.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toolClient, type ToolClient } from "./support.js";

let c: ToolClient;
let noClock: ToolClient;
const first = async (input: Record<string, unknown>): Promise<string> => {
  const r = await c.call("time", input);
  expect(r.isError, r.content).toBe(false);
  return r.content.split("\n")[0]!;
};
const convert = (time: string, zone: string) => first({ action: "convert", time, zone });

beforeAll(async () => {
  c = await toolClient("time", { grant: { clock: true } });
  noClock = await toolClient("time", { grant: {} });
});
afterAll(async () => {
  await c?.close();
  await noClock?.close();
});

describe("time zones", () => {
  it("follows the EU rule (last Sunday of March / October, 01:00 UTC)", async () => {
    expect(await convert("2026-03-29T00:59:59Z", "Europe/Berlin")).toBe("2026-03-29T01:59:59+01:00");
    expect(await convert("2026-03-29T01:00:00Z", "Europe/Berlin")).toBe("2026-03-29T03:00:00+02:00");
    expect(await convert("2026-10-25T00:59:59Z", "Europe/London")).toBe("2026-10-25T01:59:59+01:00");
    expect(await convert("2026-10-25T01:00:00Z", "Europe/London")).toBe("2026-10-25T01:00:00+00:00");
    expect(await convert("2025-07-01T12:00:00Z", "Europe/Helsinki")).toBe("2025-07-01T15:00:00+03:00");
  });

  it("follows the US rule (second Sunday of March / first Sunday of November, 02:00 local)", async () => {
    expect(await convert("2026-03-08T06:59:59Z", "America/New_York")).toBe("2026-03-08T01:59:59-05:00");
    expect(await convert("2026-03-08T07:00:00Z", "America/New_York")).toBe("2026-03-08T03:00:00-04:00");
    expect(await convert("2026-11-01T08:59:59Z", "America/Los_Angeles")).toBe("2026-11-01T01:59:59-07:00");
    expect(await convert("2026-11-01T09:00:00Z", "America/Los_Angeles")).toBe("2026-11-01T01:00:00-08:00");
    expect(await convert("2026-07-01T12:00:00Z", "America/Phoenix")).toBe("2026-07-01T05:00:00-07:00");
  });

  it("follows southern-hemisphere rules and half-hour zones", async () => {
    expect(await convert("2026-01-15T12:00:00Z", "Australia/Sydney")).toBe("2026-01-15T23:00:00+11:00");
    // DST ends on the first Sunday of April at 03:00 AEDT and starts on the first Sunday of October at 02:00 AEST.
    expect(await convert("2026-04-04T15:59:59Z", "Australia/Sydney")).toBe("2026-04-05T02:59:59+11:00");
    expect(await convert("2026-04-04T16:00:00Z", "Australia/Sydney")).toBe("2026-04-05T02:00:00+10:00");
    expect(await convert("2026-10-03T15:59:59Z", "Australia/Sydney")).toBe("2026-10-04T01:59:59+10:00");
    expect(await convert("2026-10-03T16:00:00Z", "Australia/Sydney")).toBe("2026-10-04T03:00:00+11:00");
    expect(await convert("2026-01-15T12:00:00Z", "Pacific/Auckland")).toBe("2026-01-16T01:00:00+13:00");
    expect(await convert("2026-01-15T12:00:00Z", "Asia/Kolkata")).toBe("2026-01-15T17:30:00+05:30");
    expect(await convert("2026-01-15T12:00:00Z", "Asia/Kathmandu")).toBe("2026-01-15T17:45:00+05:45");
  });

  it("accepts fixed offsets and aliases, and lists the zones it knows for an unknown one", async () => {
    expect(await convert("2025-06-01T12:00:00Z", "+05:30")).toBe("2025-06-01T17:30:00+05:30");
    expect(await convert("2025-06-01T12:00:00Z", "UTC-3")).toBe("2025-06-01T09:00:00-03:00");
    expect(await convert("2025-06-01T12:00:00Z", "US/Pacific")).toBe("2025-06-01T05:00:00-07:00");
    expect(await convert("2025-06-01T12:00:00Z", "europe/paris")).toBe("2025-06-01T14:00:00+02:00");
    const r = await c.call("time", { action: "convert", time: "2025-06-01T12:00:00Z", zone: "Mars/Olympus_Mons" });
    expect(r.isError).toBe(true);
    expect(r.content).toMatch(/^unknown time zone 'Mars\/Olympus_Mons'\. Use a fixed offset like \+05:30 or UTC-3, or one of: UTC, .*Europe\/Berlin/);
  });

  it("reads local times in the zone, flagging skipped and repeated wall-clock times", async () => {
    expect(await convert("2026-06-01 09:00", "Asia/Tokyo")).toBe("2026-06-01T09:00:00+09:00");
    const gap = await c.call("time", { action: "convert", time: "2026-03-29T02:30", zone: "Europe/Berlin" });
    expect(gap.content).toMatch(/^2026-03-29T03:30:00\+02:00\n.*\n.*\nnote: 2026-03-29T02:30 does not exist in Europe\/Berlin/);
    const twice = await c.call("time", { action: "convert", time: "2026-10-25T02:30", zone: "Europe/Berlin" });
    expect(twice.content).toMatch(/^2026-10-25T02:30:00\+02:00\n[^]*happens twice/);
  });

  it("describes the instant in words", async () => {
    const r = await c.call("time", { action: "convert", time: "2024-02-29T18:30:00Z", zone: "Europe/Berlin" });
    expect(r.content).toBe("2024-02-29T19:30:00+01:00\nThursday, 29 February 2024, 19:30:00 CET (Europe/Berlin, UTC+01:00)\nunix time: 1709231400");
  });
});

describe("date arithmetic", () => {
  it("adds calendar durations in the zone and exact ones across DST", async () => {
    expect(await first({ action: "add", time: "2024-01-31", duration: "P1M" })).toBe("2024-02-29T00:00:00Z");
    expect(await first({ action: "add", time: "2024-02-29", duration: "P1Y" })).toBe("2025-02-28T00:00:00Z");
    expect(await first({ action: "add", time: "2026-03-28T12:00", duration: "P1D", zone: "Europe/Berlin" })).toBe("2026-03-29T12:00:00+02:00");
    expect(await first({ action: "add", time: "2026-03-28T12:00", duration: "PT24H", zone: "Europe/Berlin" })).toBe("2026-03-29T13:00:00+02:00");
    expect(await first({ action: "add", time: "2025-01-01T00:00:00Z", duration: "-PT90M" })).toBe("2024-12-31T22:30:00Z");
    expect(await first({ action: "add", time: "2025-01-01T00:00:00Z", duration: "P2W1DT1.5H" })).toBe("2025-01-16T01:30:00Z");
  });

  it("computes differences", async () => {
    const r = await c.call("time", { action: "diff", time: "2024-01-01T00:00:00Z", to: "2024-03-01T12:30:00.5Z" });
    expect(r.content.split("\n")[0]).toBe("P60DT12H30M0.5S (60 days 12 hours 30 minutes 0.5 seconds)");
    expect(r.content).toContain("total: 5229000 seconds = 1452.5 hours = 60.52 days");
    const back = await c.call("time", { action: "diff", time: "2024-03-01", to: "2024-01-01", zone: "America/New_York" });
    expect(back.content.split("\n")[0]).toBe("-P60D (minus 60 days)");
    expect(back.content).toContain("(the end is before the start)");
  });

  it("refuses malformed dates, durations and out-of-range results", async () => {
    const err = async (input: Record<string, unknown>) => {
      const r = await c.call("time", input);
      expect(r.isError).toBe(true);
      return r.content;
    };
    expect(await err({ action: "convert", time: "2024-02-30" })).toBe("'time': no such date: 2024-02-30");
    expect(await err({ action: "convert", time: "tomorrow" })).toMatch(/^'time': expected an ISO 8601 date-time/);
    expect(await err({ action: "add", time: "2024-01-01", duration: "1 day" })).toMatch(/^'duration': expected an ISO 8601 duration/);
    expect(await err({ action: "add", time: "2024-01-01", duration: "P1H" })).toMatch(/time components come after T/);
    expect(await err({ action: "add", time: "9999-12-31", duration: "P1D" })).toBe("the result is outside the years 0001-9999");
    expect(await err({ action: "add", time: "2024-01-01" })).toMatch(/'add' needs 'duration'/);
    expect(await err({ action: "sleep" })).toBe("unknown action 'sleep' (expected now, convert, add or diff)");
  });
});

describe("the clock capability", () => {
  it("gives the current time when granted", async () => {
    const before = Date.now();
    const r = await c.call("time", { action: "now", zone: "UTC" });
    const unix = Number(/unix time: (-?\d+)/.exec(r.content)![1]) * 1000;
    expect(unix).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000 - 1000);
    expect(unix).toBeLessThanOrEqual(Date.now() + 1000);
    expect(r.content).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z\n/);
  });

  it("explains a missing grant, and works without it when the times are given", async () => {
    const r = await noClock.call("time", { action: "now" });
    expect(r.isError).toBe(true);
    expect(r.content).toMatch(/needs the 'clock' capability, which the operator has not granted/);
    expect((await noClock.call("time", { action: "convert", time: "2025-01-01T00:00:00Z", zone: "Asia/Tokyo" })).content).toMatch(
      /^2025-01-01T09:00:00\+09:00/,
    );
    expect((await noClock.call("time", { action: "diff", time: "2025-01-01" })).isError).toBe(true); // "to" defaults to now
  });
});
