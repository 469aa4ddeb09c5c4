import { describe, expect, it } from "vitest";
import { describeSchedule, latestDueSlot, nextSlot, parseSchedule, ScheduleError } from "../../host/src/automation/index.js";

const T = Date.parse("2026-12-04T10:00:00.000Z");

describe("parseSchedule", () => {
  it("reads exactly one of cron, every or at, naming the field of a bad one", () => {
    expect(parseSchedule({ cron: "0 9 * * *", tz: "Europe/Berlin" }, T)).toEqual({ kind: "cron", expr: "0 9 * * *", tz: "Europe/Berlin" });
    expect(parseSchedule({ every: "30m" }, T)).toEqual({ kind: "every", everyMs: 1_800_000, anchorMs: T });
    expect(parseSchedule({ at: "2026-12-24T18:00:00Z" }, T)).toEqual({ kind: "at", atMs: Date.parse("2026-12-24T18:00:00Z") });
    const fails: [object, string][] = [
      [{}, "schedule"],
      [{ cron: "* * * * *", every: "1m" }, "schedule"],
      [{ cron: "61 * * * *" }, "cron"],
      [{ cron: "* * * * *", tz: "Mars/Olympus" }, "tz"],
      [{ every: "1m", tz: "UTC" }, "tz"],
      [{ every: "500ms" }, "every"],
      [{ every: "0s" }, "every"],
      [{ at: "tomorrow" }, "at"],
    ];
    for (const [input, field] of fails) {
      let err: unknown;
      try {
        parseSchedule(input, T);
      } catch (e) {
        err = e;
      }
      expect(err, JSON.stringify(input)).toBeInstanceOf(ScheduleError);
      expect((err as ScheduleError).field, JSON.stringify(input)).toBe(field);
    }
  });
});

describe("nextSlot", () => {
  it("an interval stays on its grid from the anchor, strictly after the given instant", () => {
    const s = parseSchedule({ every: "1m" }, T);
    expect(nextSlot(s, T - 5)).toBe(T);
    expect(nextSlot(s, T)).toBe(T + 60_000);
    expect(nextSlot(s, T + 59_999)).toBe(T + 60_000);
    expect(nextSlot(s, T + 60_000)).toBe(T + 120_000);
  });

  it("a cron expression is read in its time zone (09:00 Berlin is 08:00 UTC in December)", () => {
    const s = parseSchedule({ cron: "0 9 * * *", tz: "Europe/Berlin" }, T);
    expect(new Date(nextSlot(s, T)!).toISOString()).toBe("2026-12-05T08:00:00.000Z");
    const utc = parseSchedule({ cron: "0 9 * * *" }, T);
    expect(new Date(nextSlot(utc, T)!).toISOString()).toBe("2026-12-05T09:00:00.000Z");
  });

  it("a cron expression with seconds fires every second", () => {
    const s = parseSchedule({ cron: "* * * * * *" }, T);
    expect(nextSlot(s, T)).toBe(T + 1000);
  });

  it("a one-shot instant is due once", () => {
    const s = parseSchedule({ at: "2026-12-04T10:00:05Z" }, T);
    expect(nextSlot(s, T)).toBe(T + 5000);
    expect(nextSlot(s, T + 5000)).toBeUndefined();
  });
});

describe("latestDueSlot", () => {
  it("finds the most recent slot missed since the last run, or none", () => {
    const every = parseSchedule({ every: "1m" }, T);
    expect(latestDueSlot(every, T + 30_000, T + 5 * 60_000 + 10)).toBe(T + 5 * 60_000);
    expect(latestDueSlot(every, T + 5 * 60_000, T + 5 * 60_000 + 10)).toBeUndefined();
    const cron = parseSchedule({ cron: "0 * * * *" }, T);
    expect(latestDueSlot(cron, T, T + 3 * 3_600_000 + 5)).toBe(T + 3 * 3_600_000);
    expect(latestDueSlot(cron, T, T + 3_599_999)).toBeUndefined();
    const at = parseSchedule({ at: "2026-12-04T10:00:05Z" }, T);
    expect(latestDueSlot(at, T, T + 10_000)).toBe(T + 5000);
    expect(latestDueSlot(at, T + 5000, T + 10_000)).toBeUndefined();
  });
});

describe("describeSchedule", () => {
  it("gives the schedule back as an operator wrote it", () => {
    expect(describeSchedule(parseSchedule({ cron: "0 9 * * 1", tz: "UTC" }, T))).toEqual({ cron: "0 9 * * 1", tz: "UTC" });
    expect(describeSchedule(parseSchedule({ every: "2h" }, T))).toEqual({ every: "7200s" });
    expect(describeSchedule(parseSchedule({ at: "2026-12-24T18:00:00Z" }, T))).toEqual({ at: "2026-12-24T18:00:00.000Z" });
  });
});
