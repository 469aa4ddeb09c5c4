// time: the current time in a time zone, conversions, and date arithmetic (add a duration,
// the span between two times). Only "now" (and defaults that mean now) read the clock, which
// needs the `clock` capability; everything else is pure computation.

import { clockNowResult, formatNumber, runTool, ToolResult, Value } from "@exoclaw/plugin-sdk/assembly";
import {
  civilFromDays, daysFromCivil, floorDiv, floorMod, formatSpan, fraction, MAX_YEAR, MIN_YEAR, monthLength, monthName, MS_PER_DAY,
  MS_PER_MINUTE, MS_PER_SECOND, pad, parseDuration, parseIsoDateTime, weekday, weekdayName,
} from "./calendar";
import { abbrAt, findZone, formatOffset, isDst, offsetAt, resolveLocal, Zone, zoneNames } from "./zones";

/** Instants outside years 1..9999 are refused (ISO 8601 without expanded years). */
const MIN_MS: i64 = daysFromCivil(MIN_YEAR, 1, 1) * MS_PER_DAY;
const MAX_MS: i64 = daysFromCivil(MAX_YEAR + 1, 1, 1) * MS_PER_DAY - 1;

class Fail {
  constructor(public message: string) {}
}

let failure: Fail | null = null;

function fail(message: string): i64 {
  failure = new Fail(message);
  return 0;
}

function str(input: Value, key: string): string | null {
  const v = input.get(key);
  if (v == null || v.isNil()) return null;
  return v.isString() ? v.strValue : "\u0000not a string";
}

/** The current instant, or a failure explaining the missing capability. */
function now(): i64 {
  const r = clockNowResult();
  if (!r.ok) {
    return fail(
      "reading the current time needs the 'clock' capability, which the operator has not granted to this plugin (" +
        r.error + "). Pass an explicit 'time' to convert or compute with dates without it.",
    );
  }
  const ms = r.number();
  if (isNaN(ms)) return fail("the host returned no time");
  return <i64>Math.floor(ms);
}

/** An ISO 8601 time (read in `zone` when it has no offset), or now when `text` is null. */
function instant(text: string | null, zone: Zone, what: string, notes: Array<string>): i64 {
  if (text == null || text.trim().toLowerCase() == "now") return now();
  if (text.startsWith("\u0000")) return fail("'" + what + "' must be a string");
  if (text.length > 100) return fail("'" + what + "' is too long for a date-time");
  const p = parseIsoDateTime(text);
  if (p.error.length > 0) return fail("'" + what + "': " + p.error);
  if (p.hasOffset) return p.localMs - <i64>p.offsetMinutes * MS_PER_MINUTE;
  const r = resolveLocal(zone, p.localMs);
  if (r.kind == 1) notes.push("note: " + text.trim() + " happens twice in " + zone.name + " (the clocks go back); the first one is used");
  if (r.kind == 2) notes.push("note: " + text.trim() + " does not exist in " + zone.name + " (the clocks go forward); it was moved by the gap");
  return r.t;
}

function inRange(t: i64): bool {
  return t >= MIN_MS && t <= MAX_MS;
}

/** ISO 8601 with the zone's offset at `t` (`Z` in UTC). */
function iso(t: i64, zone: Zone): string {
  const off = offsetAt(zone, t);
  const local = t + <i64>off * MS_PER_MINUTE;
  const days = floorDiv(local, MS_PER_DAY);
  const c = civilFromDays(days);
  const rest = floorMod(local, MS_PER_DAY);
  const h = rest / 3600000;
  const m = (rest / 60000) % 60;
  const s = (rest / 1000) % 60;
  const ms = rest % 1000;
  const zoneText = off == 0 && zone.name == "UTC" ? "Z" : formatOffset(off);
  return pad(c.year, 4) + "-" + pad(c.month, 2) + "-" + pad(c.day, 2) + "T" + pad(h, 2) + ":" + pad(m, 2) + ":" + pad(s, 2) + (ms > 0 ? "." + fraction(ms) : "") + zoneText;
}

/** "Sunday, 29 March 2026, 03:30:00 CEST (Europe/Berlin, UTC+02:00, daylight saving time)". */
function human(t: i64, zone: Zone): string {
  const off = offsetAt(zone, t);
  const local = t + <i64>off * MS_PER_MINUTE;
  const days = floorDiv(local, MS_PER_DAY);
  const c = civilFromDays(days);
  const rest = floorMod(local, MS_PER_DAY);
  const clock = pad(rest / 3600000, 2) + ":" + pad((rest / 60000) % 60, 2) + ":" + pad((rest / 1000) % 60, 2);
  const dst = isDst(zone, t) ? ", daylight saving time" : "";
  const detail = zone.name.startsWith("UTC") && zone.name != "UTC" ? zone.name : zone.name + ", UTC" + formatOffset(off);
  return weekdayName(weekday(days)) + ", " + c.day.toString() + " " + monthName(c.month) + " " + c.year.toString() + ", " + clock + " " + abbrAt(zone, t) + " (" + detail + dst + ")";
}

function describe(t: i64, zone: Zone, notes: Array<string>): string {
  let out = iso(t, zone) + "\n" + human(t, zone) + "\nunix time: " + floorDiv(t, MS_PER_SECOND).toString();
  for (let i = 0; i < notes.length; i++) out += "\n" + notes[i];
  return out;
}

/** `t` plus a calendar-aware duration, in `zone`: years/months/days move the local date. */
function addDuration(t: i64, text: string, zone: Zone, notes: Array<string>): i64 {
  if (text.length > 100) return fail("'duration' is too long");
  const d = parseDuration(text);
  if (d.error.length > 0) return fail("'duration': " + d.error);
  let result = t;
  if (d.years != 0 || d.months != 0 || d.days != 0) {
    const off = offsetAt(zone, t);
    const local = t + <i64>off * MS_PER_MINUTE;
    const days = floorDiv(local, MS_PER_DAY);
    const timeOfDay = floorMod(local, MS_PER_DAY);
    const c = civilFromDays(days);
    const monthIndex = c.year * 12 + <i64>(c.month - 1) + d.years * 12 + d.months;
    const year = floorDiv(monthIndex, 12);
    if (year < MIN_YEAR || year > MAX_YEAR) return fail("the result is outside the years 0001-9999");
    const month = <i32>floorMod(monthIndex, 12) + 1;
    let day = c.day;
    const len = monthLength(year, month);
    if (day > len) {
      notes.push("note: " + monthName(month) + " " + year.toString() + " has no day " + day.toString() + "; the last day of the month is used");
      day = len;
    }
    const newDays = daysFromCivil(year, month, day) + d.days;
    if (newDays < MIN_MS / MS_PER_DAY || newDays > MAX_MS / MS_PER_DAY) return fail("the result is outside the years 0001-9999");
    const r = resolveLocal(zone, newDays * MS_PER_DAY + timeOfDay);
    if (r.kind == 2) notes.push("note: that wall-clock time does not exist in " + zone.name + " (the clocks go forward); it was moved by the gap");
    result = r.t;
  }
  if (d.ms > MAX_MS - MIN_MS || d.ms < MIN_MS - MAX_MS) return fail("the duration is too long");
  return result + d.ms;
}

/** At most 40 characters of `s`, for echoing input in messages. */
function clip(s: string): string {
  return s.length <= 40 ? s : s.substring(0, 40) + "...";
}

function handle(tool: string, input: Value): ToolResult {
  failure = null;
  if (tool != "time") return ToolResult.error("unknown tool '" + clip(tool) + "'");
  if (!input.isMap() && !input.isNil()) return ToolResult.error("input must be an object {action, zone?, time?, duration?, to?}");
  const a = str(input, "action");
  const action = a == null ? "now" : a.trim().toLowerCase();
  const zoneText = str(input, "zone");
  if (zoneText != null && (zoneText.startsWith("\u0000") || zoneText.length > 64)) return ToolResult.error("'zone' must be a zone name like Europe/Berlin or an offset like +05:30");
  const zone = findZone(zoneText == null ? "UTC" : zoneText);
  if (zone == null) {
    return ToolResult.error(
      "unknown time zone '" + clip(<string>zoneText) + "'. Use a fixed offset like +05:30 or UTC-3, or one of: " + zoneNames().join(", "),
    );
  }
  const notes = new Array<string>();
  let text = "";
  if (action == "now" || action == "convert") {
    const t = instant(action == "now" ? null : str(input, "time"), zone, "time", notes);
    if (failure == null && !inRange(t)) fail("the time is outside the years 0001-9999");
    if (failure == null) text = describe(t, zone, notes);
  } else if (action == "add") {
    const dur = str(input, "duration");
    if (dur == null || dur.startsWith("\u0000")) return ToolResult.error("'add' needs 'duration', an ISO 8601 duration like P1D, PT90M or -P1M");
    const t = instant(str(input, "time"), zone, "time", notes);
    let r: i64 = 0;
    if (failure == null) r = addDuration(t, dur, zone, notes);
    if (failure == null && !inRange(r)) fail("the result is outside the years 0001-9999");
    if (failure == null) text = describe(r, zone, notes);
  } else if (action == "diff") {
    const from = instant(str(input, "time"), zone, "time", notes);
    let to: i64 = 0;
    if (failure == null) to = instant(str(input, "to"), zone, "to", notes);
    if (failure == null) {
      const span = to - from;
      const abs = span < 0 ? -span : span;
      text = formatSpan(span) + "\n" +
        "from " + iso(from, zone) + " to " + iso(to, zone) + (span < 0 ? " (the end is before the start)" : "") + "\n" +
        "total: " + floorDiv(abs, MS_PER_SECOND).toString() + " seconds = " + formatNumber(Math.round(<f64>abs / 36000.0) / 100) + " hours = " + formatNumber(Math.round(<f64>abs / 864000.0) / 100) + " days";
      for (let i = 0; i < notes.length; i++) text += "\n" + notes[i];
    }
  } else {
    return ToolResult.error("unknown action '" + clip(action) + "' (expected now, convert, add or diff)");
  }
  const f = failure;
  if (f != null) return ToolResult.error(f.message);
  return ToolResult.ok(text);
}

export function call(): i32 {
  return runTool(handle);
}
