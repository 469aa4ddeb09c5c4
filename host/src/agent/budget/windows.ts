/**
 * Calendar windows of budgets: the day and month a moment falls in, in an IANA time zone.
 * Pure (the caller passes the moment).
 */

const FORMATS = new Map<string, Intl.DateTimeFormat>();

/** The calendar day and month of one moment in one time zone. */
export interface CalendarWindow {
  /** `YYYY-MM-DD` in the zone. */
  day: string;
  /** `YYYY-MM` in the zone. */
  month: string;
}

/** Per zone: the last minute asked and its answer (a budget check asks the same minute many times). */
const LAST = new Map<string, { minute: number; window: CalendarWindow }>();

/**
 * The day and month `atMs` (ms since the Unix epoch) falls in, in `timeZone` (IANA name, e.g.
 * "Europe/Berlin"; the day starts at the zone's local midnight, daylight saving included).
 * @throws RangeError for a time zone `Intl` does not know (the config schema checks it first)
 */
export function calendarWindow(atMs: number, timeZone: string): CalendarWindow {
  // Zone offsets are whole minutes: one answer holds for the whole minute.
  const minute = Math.floor(atMs / 60_000);
  const last = LAST.get(timeZone);
  if (last !== undefined && last.minute === minute) return last.window;
  let fmt = FORMATS.get(timeZone);
  if (fmt === undefined) {
    fmt = new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" });
    FORMATS.set(timeZone, fmt);
  }
  let y = "";
  let m = "";
  let d = "";
  for (const p of fmt.formatToParts(atMs)) {
    if (p.type === "year") y = p.value;
    else if (p.type === "month") m = p.value;
    else if (p.type === "day") d = p.value;
  }
  const window = { day: `${y}-${m}-${d}`, month: `${y}-${m}` };
  LAST.set(timeZone, { minute, window });
  return window;
}
