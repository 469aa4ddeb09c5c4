// Proleptic Gregorian calendar arithmetic on days since 1970-01-01 (Howard Hinnant's
// algorithms), ISO 8601 date-times and durations.

export const MS_PER_SECOND: i64 = 1000;
export const MS_PER_MINUTE: i64 = 60 * MS_PER_SECOND;
export const MS_PER_HOUR: i64 = 60 * MS_PER_MINUTE;
export const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/** Years accepted and produced. */
export const MIN_YEAR: i64 = 1;
export const MAX_YEAR: i64 = 9999;

/** Division rounding towards negative infinity. */
export function floorDiv(a: i64, b: i64): i64 {
  const q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/** Remainder with the sign of the divisor. */
export function floorMod(a: i64, b: i64): i64 {
  return a - floorDiv(a, b) * b;
}

/** Days since 1970-01-01 of a civil date. */
export function daysFromCivil(year: i64, month: i32, day: i32): i64 {
  const y = month <= 2 ? year - 1 : year;
  const era = floorDiv(y, 400);
  const yoe = y - era * 400;
  const mp = <i64>(month > 2 ? month - 3 : month + 9);
  const doy = (153 * mp + 2) / 5 + <i64>day - 1;
  const doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

/** A civil date. */
export class Civil {
  constructor(
    public year: i64,
    public month: i32,
    public day: i32,
  ) {}
}

/** The civil date of a day number. */
export function civilFromDays(days: i64): Civil {
  const z = days + 719468;
  const era = floorDiv(z, 146097);
  const doe = z - era * 146097;
  const yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const mp = (5 * doy + 2) / 153;
  const d = <i32>(doy - (153 * mp + 2) / 5 + 1);
  const m = <i32>(mp < 10 ? mp + 3 : mp - 9);
  return new Civil(yoe + era * 400 + (m <= 2 ? 1 : 0), m, d);
}

/** 0 = Sunday ... 6 = Saturday. */
export function weekday(days: i64): i32 {
  return <i32>floorMod(days + 4, 7);
}

export function isLeap(year: i64): bool {
  return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

export function monthLength(year: i64, month: i32): i32 {
  if (month == 2) return isLeap(year) ? 29 : 28;
  return month == 4 || month == 6 || month == 9 || month == 11 ? 30 : 31;
}

const WEEKDAYS: string[] = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const MONTHS: string[] = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

export function weekdayName(wd: i32): string {
  return WEEKDAYS[wd];
}

export function monthName(m: i32): string {
  return MONTHS[m - 1];
}

export function pad(v: i64, width: i32): string {
  let s = (v < 0 ? -v : v).toString();
  while (s.length < width) s = "0" + s;
  return v < 0 ? "-" + s : s;
}

/** A parsed ISO 8601 date-time: local wall time as ms (as if UTC) and the offset if one was given. */
export class ParsedTime {
  localMs: i64 = 0;
  hasOffset: bool = false;
  offsetMinutes: i32 = 0;
  error: string = "";
}

function digits(s: string, from: i32, n: i32): i32 {
  if (from + n > s.length) return -1;
  let v = 0;
  for (let i = from; i < from + n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return v;
}

/**
 * Parses `YYYY-MM-DD`, optionally followed by `T` (or a space) and `HH:MM[:SS[.fraction]]`, then
 * optionally `Z` or `±HH:MM` / `±HHMM` / `±HH`. A date alone means midnight.
 */
export function parseIsoDateTime(text: string): ParsedTime {
  const r = new ParsedTime();
  const s = text.trim();
  const y = digits(s, 0, 4);
  const mo = digits(s, 5, 2);
  const d = digits(s, 8, 2);
  if (y < 0 || mo < 0 || d < 0 || s.charCodeAt(4) != 0x2d || s.charCodeAt(7) != 0x2d) {
    r.error = "expected an ISO 8601 date-time like 2025-03-30T14:05:00+02:00 or a date like 2025-03-30, got '" + s + "'";
    return r;
  }
  if (y < <i32>MIN_YEAR || mo < 1 || mo > 12 || d < 1 || d > monthLength(y, mo)) {
    r.error = "no such date: " + s.substring(0, 10);
    return r;
  }
  let i = 10;
  let h = 0;
  let mi = 0;
  let sec = 0;
  let ms = 0;
  if (i < s.length && (s.charCodeAt(i) == 0x54 || s.charCodeAt(i) == 0x74 || s.charCodeAt(i) == 0x20)) {
    i++;
    h = digits(s, i, 2);
    mi = digits(s, i + 3, 2);
    if (h < 0 || mi < 0 || s.charCodeAt(i + 2) != 0x3a) {
      r.error = "expected a time like 14:05 or 14:05:30 after the date in '" + s + "'";
      return r;
    }
    i += 5;
    if (i < s.length && s.charCodeAt(i) == 0x3a) {
      sec = digits(s, i + 1, 2);
      if (sec < 0) {
        r.error = "expected seconds after the minutes in '" + s + "'";
        return r;
      }
      i += 3;
      if (i < s.length && (s.charCodeAt(i) == 0x2e || s.charCodeAt(i) == 0x2c)) {
        i++;
        let scale = 100;
        const start = i;
        while (i < s.length && s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) {
          ms += (s.charCodeAt(i) - 0x30) * scale;
          scale /= 10;
          i++;
        }
        if (i == start) {
          r.error = "expected digits after the decimal point in '" + s + "'";
          return r;
        }
      }
    }
    if (h > 23 || mi > 59 || sec > 60) {
      r.error = "no such time of day in '" + s + "'";
      return r;
    }
    if (sec == 60) sec = 59; // a leap second: the nearest representable instant
  }
  if (i < s.length) {
    const c = s.charCodeAt(i);
    if ((c == 0x5a || c == 0x7a) && i + 1 == s.length) {
      r.hasOffset = true;
    } else if (c == 0x2b || c == 0x2d || c == 0x2212) {
      const rest = s.substring(i + 1);
      let oh = -1;
      let om = 0;
      if (rest.length == 2) oh = digits(rest, 0, 2);
      else if (rest.length == 4) {
        oh = digits(rest, 0, 2);
        om = digits(rest, 2, 2);
      } else if (rest.length == 5 && rest.charCodeAt(2) == 0x3a) {
        oh = digits(rest, 0, 2);
        om = digits(rest, 3, 2);
      }
      if (oh < 0 || om < 0 || oh > 18 || om > 59) {
        r.error = "expected an offset like +02:00 at the end of '" + s + "'";
        return r;
      }
      r.hasOffset = true;
      r.offsetMinutes = c == 0x2b ? oh * 60 + om : -(oh * 60 + om);
    } else {
      r.error = "unexpected '" + s.substring(i) + "' in '" + s + "'";
      return r;
    }
  }
  r.localMs = daysFromCivil(y, mo, d) * MS_PER_DAY + <i64>h * MS_PER_HOUR + <i64>mi * MS_PER_MINUTE + <i64>sec * MS_PER_SECOND + <i64>ms;
  return r;
}

/** An ISO 8601 duration: calendar part (years, months, days) and exact part (ms). */
export class Duration {
  years: i64 = 0;
  months: i64 = 0;
  days: i64 = 0;
  ms: i64 = 0;
  error: string = "";
}

/** Largest magnitude of one duration component, so that arithmetic stays far from overflow. */
const MAX_COMPONENT: f64 = 1e7;

/**
 * Parses `[-]P[nY][nM][nW][nD][T[nH][nM][nS]]` (the last component may have a fraction, e.g.
 * `PT1.5H`). A leading `-` negates every component.
 */
export function parseDuration(text: string): Duration {
  const r = new Duration();
  let s = text.trim().toUpperCase();
  let sign: i64 = 1;
  if (s.startsWith("-") || s.startsWith("\u2212")) {
    sign = -1;
    s = s.substring(1);
  } else if (s.startsWith("+")) {
    s = s.substring(1);
  }
  if (!s.startsWith("P") || s.length < 2) {
    r.error = "expected an ISO 8601 duration like P1D, PT2H30M, P1Y2M or -PT15M, got '" + text + "'";
    return r;
  }
  let inTime = false;
  let i = 1;
  let any = false;
  let last = false;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c == 0x54) {
      if (inTime) break;
      inTime = true;
      i++;
      continue;
    }
    if (last) {
      r.error = "only the last component of a duration may have a fraction: '" + text + "'";
      return r;
    }
    const start = i;
    while (i < s.length && ((s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39) || s.charCodeAt(i) == 0x2e || s.charCodeAt(i) == 0x2c)) i++;
    if (i == start || i >= s.length) {
      r.error = "malformed duration '" + text + "'";
      return r;
    }
    const numText = s.substring(start, i).replace(",", ".");
    const v = parseFloat(numText);
    if (isNaN(v) || v > MAX_COMPONENT) {
      r.error = "duration component '" + numText + "' is not a number below 10000000";
      return r;
    }
    if (numText.includes(".")) last = true;
    const unit = s.charCodeAt(i);
    i++;
    any = true;
    const whole = <i64>Math.floor(v);
    if (!inTime && unit == 0x59) {
      if (last) { r.error = "fractional years are not supported: '" + text + "'"; return r; }
      r.years += sign * whole;
    } else if (!inTime && unit == 0x4d) {
      if (last) { r.error = "fractional months are not supported: '" + text + "'"; return r; }
      r.months += sign * whole;
    } else if (!inTime && unit == 0x57) {
      r.days += sign * whole * 7;
      r.ms += sign * <i64>Math.round((v - <f64>whole) * 7 * <f64>MS_PER_DAY);
    } else if (!inTime && unit == 0x44) {
      r.days += sign * whole;
      r.ms += sign * <i64>Math.round((v - <f64>whole) * <f64>MS_PER_DAY);
    } else if (inTime && unit == 0x48) {
      r.ms += sign * <i64>Math.round(v * <f64>MS_PER_HOUR);
    } else if (inTime && unit == 0x4d) {
      r.ms += sign * <i64>Math.round(v * <f64>MS_PER_MINUTE);
    } else if (inTime && unit == 0x53) {
      r.ms += sign * <i64>Math.round(v * <f64>MS_PER_SECOND);
    } else {
      r.error = "unexpected '" + String.fromCharCode(unit) + "' in duration '" + text + "'" + (inTime ? "" : " (time components come after T, as in PT5M)");
      return r;
    }
  }
  if (!any) r.error = "empty duration '" + text + "'";
  return r;
}

/** Milliseconds as a decimal fraction of a second without trailing zeros (50 -> "05"). */
export function fraction(ms: i64): string {
  let f = pad(ms, 3);
  while (f.endsWith("0")) f = f.substring(0, f.length - 1);
  return f;
}

/** An exact span as ISO 8601 (`P3DT4H5M6.5S`, days of 24 hours) and in words. */
export function formatSpan(ms: i64): string {
  const neg = ms < 0;
  let rest = neg ? -ms : ms;
  const d = rest / MS_PER_DAY;
  rest %= MS_PER_DAY;
  const h = rest / MS_PER_HOUR;
  rest %= MS_PER_HOUR;
  const m = rest / MS_PER_MINUTE;
  rest %= MS_PER_MINUTE;
  const s = rest / MS_PER_SECOND;
  const frac = rest % MS_PER_SECOND;
  let iso = (neg ? "-" : "") + "P" + (d > 0 ? d.toString() + "D" : "");
  if (h > 0 || m > 0 || s > 0 || frac > 0) {
    iso += "T" + (h > 0 ? h.toString() + "H" : "") + (m > 0 ? m.toString() + "M" : "");
    if (s > 0 || frac > 0) iso += s.toString() + (frac > 0 ? "." + fraction(frac) : "") + "S";
  }
  if (iso == "P" || iso == "-P") iso = "PT0S";
  const words = new Array<string>();
  if (d > 0) words.push(d.toString() + (d == 1 ? " day" : " days"));
  if (h > 0) words.push(h.toString() + (h == 1 ? " hour" : " hours"));
  if (m > 0) words.push(m.toString() + (m == 1 ? " minute" : " minutes"));
  if (s > 0 || frac > 0 || words.length == 0) {
    words.push(s.toString() + (frac > 0 ? "." + fraction(frac) : "") + (s == 1 && frac == 0 ? " second" : " seconds"));
  }
  return iso + " (" + (neg ? "minus " : "") + words.join(" ") + ")";
}
