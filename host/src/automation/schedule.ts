/**
 * When a scheduled job fires: pure functions over a {@link Schedule}, no timers, no I/O.
 *
 * Three forms: a cron expression read in a time zone (croner: 5 fields, or 6 with seconds
 * first), a fixed interval (slots at `anchor + k * every`, so a restart keeps the same grid), or
 * one instant (`at`, reminders). A slot is the instant a run is due, ms since the epoch; it names
 * the run (its idempotency key and cluster claim), so the same slot never runs twice.
 */
import { Cron } from "croner";
import { DURATION_HINT, parseDuration } from "../util/index.js";

/** A job's schedule. All instants are ms since the epoch (UTC). */
export type Schedule =
  /** `expr`: a cron expression; `tz`: an IANA time zone it is read in (default UTC). */
  | { kind: "cron"; expr: string; tz: string }
  /** Every `everyMs` ms, on the grid `anchorMs + k * everyMs`. */
  | { kind: "every"; everyMs: number; anchorMs: number }
  /** Once, at `atMs`. */
  | { kind: "at"; atMs: number };

/** Shortest interval accepted, ms (a job every second is the finest grid; cron allows seconds too). */
export const MIN_INTERVAL_MS = 1000;

/** A schedule that cannot be used; `field` names the offending input field. */
export class ScheduleError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = "ScheduleError";
  }
}

/** What an operator writes: exactly one of `cron` (+ `tz`), `every` (duration) or `at` (ISO 8601 instant). */
export interface ScheduleInput {
  cron?: string;
  tz?: string;
  every?: string;
  at?: string;
}

/**
 * Reads an operator's schedule.
 * @param anchorMs the grid origin of an interval (the job's creation time)
 * @throws ScheduleError naming the field: none or several of cron/every/at, a cron expression
 *   croner rejects, an unknown time zone, a bad duration or one under 1 s, an unparsable instant
 */
export function parseSchedule(input: ScheduleInput, anchorMs: number): Schedule {
  const given = (["cron", "every", "at"] as const).filter((k) => input[k] !== undefined);
  if (given.length !== 1) throw new ScheduleError("schedule", `set exactly one of cron, every or at (got ${given.length === 0 ? "none" : given.join(", ")})`);
  if (input.tz !== undefined && input.cron === undefined) throw new ScheduleError("tz", "tz applies to cron expressions only");
  if (input.cron !== undefined) {
    const tz = input.tz ?? "UTC";
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: tz });
    } catch {
      throw new ScheduleError("tz", `unknown time zone ${JSON.stringify(tz)} (use an IANA name such as UTC or Europe/Berlin)`);
    }
    try {
      new Cron(input.cron, { timezone: tz, paused: true });
    } catch (err) {
      throw new ScheduleError("cron", `invalid cron expression ${JSON.stringify(input.cron)}: ${(err as Error).message}`);
    }
    return { kind: "cron", expr: input.cron, tz };
  }
  if (input.every !== undefined) {
    const everyMs = parseDuration(input.every);
    if (everyMs === undefined) throw new ScheduleError("every", `must be ${DURATION_HINT}`);
    if (everyMs < MIN_INTERVAL_MS) throw new ScheduleError("every", "must be at least 1s");
    return { kind: "every", everyMs, anchorMs };
  }
  const atMs = Date.parse(input.at!);
  if (!Number.isFinite(atMs)) throw new ScheduleError("at", `must be an ISO 8601 instant such as 2026-12-24T18:00:00Z (got ${JSON.stringify(input.at)})`);
  return { kind: "at", atMs };
}

/**
 * The first slot strictly after `afterMs`, or undefined when the schedule has none left (an `at`
 * in the past, a cron expression that never matches again).
 */
export function nextSlot(schedule: Schedule, afterMs: number): number | undefined {
  switch (schedule.kind) {
    case "at":
      return schedule.atMs > afterMs ? schedule.atMs : undefined;
    case "every": {
      const { anchorMs, everyMs } = schedule;
      if (afterMs < anchorMs) return anchorMs;
      return anchorMs + (Math.floor((afterMs - anchorMs) / everyMs) + 1) * everyMs;
    }
    case "cron": {
      const next = new Cron(schedule.expr, { timezone: schedule.tz, paused: true }).nextRun(new Date(afterMs));
      return next === null ? undefined : next.getTime();
    }
  }
}

/**
 * The last slot at or before `nowMs` and after `afterMs` (the most recent run that is due), or
 * undefined when none is due. Walks at most `limit` slots (a cron every second over a long
 * downtime): past it, the latest slot found so far is returned.
 */
export function latestDueSlot(schedule: Schedule, afterMs: number, nowMs: number, limit = 100_000): number | undefined {
  if (schedule.kind === "every") {
    const { anchorMs, everyMs } = schedule;
    if (nowMs < anchorMs) return undefined;
    const last = anchorMs + Math.floor((nowMs - anchorMs) / everyMs) * everyMs;
    return last > afterMs ? last : undefined;
  }
  let found: number | undefined;
  let cursor = afterMs;
  for (let i = 0; i < limit; i++) {
    const slot = nextSlot(schedule, cursor);
    if (slot === undefined || slot > nowMs) break;
    found = slot;
    cursor = slot;
  }
  return found;
}

/** A schedule as an operator reads it back (`cron.list`). */
export function describeSchedule(schedule: Schedule): ScheduleInput {
  switch (schedule.kind) {
    case "cron":
      return { cron: schedule.expr, tz: schedule.tz };
    case "every":
      return { every: `${Math.round(schedule.everyMs / 1000)}s` };
    case "at":
      return { at: new Date(schedule.atMs).toISOString() };
  }
}
