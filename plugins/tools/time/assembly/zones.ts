// Time zones: a compact table of common IANA zones with today's rules, plus fixed offsets.
//
// Coverage, honestly: the zones below, each with the rule it follows *now* (US since 2007, EU
// since 1996, Australia since 2008, New Zealand since 2007, Israel since 2013, Egypt since 2023;
// Mexico, Brazil, Iran, Turkey, Fiji without DST as they are today). Dates before a rule took
// effect may be off by an hour, and future rule changes are not known. Any other zone can be
// given as a fixed offset ("+05:30", "UTC-3").

import { civilFromDays, daysFromCivil, floorDiv, MS_PER_DAY, MS_PER_MINUTE, weekday } from "./calendar";

export const RULE_NONE: i32 = 0;
export const RULE_US: i32 = 1;
export const RULE_EU: i32 = 2;
export const RULE_AU: i32 = 3;
export const RULE_NZ: i32 = 4;
export const RULE_IL: i32 = 5;
export const RULE_EG: i32 = 6;

/** A zone: standard offset, DST rule (+60 min when in effect), abbreviations. */
export class Zone {
  constructor(
    public name: string,
    public stdMinutes: i32,
    public rule: i32,
    public stdAbbr: string,
    public dstAbbr: string,
  ) {}
}

// name, standard offset in minutes, rule, abbreviations ("std/dst" or "std").
const TABLE: string = `UTC 0 - UTC
Etc/UTC 0 - UTC
GMT 0 - GMT
America/New_York -300 US EST/EDT
America/Detroit -300 US EST/EDT
America/Toronto -300 US EST/EDT
America/Indiana/Indianapolis -300 US EST/EDT
America/Chicago -360 US CST/CDT
America/Winnipeg -360 US CST/CDT
America/Denver -420 US MST/MDT
America/Edmonton -420 US MST/MDT
America/Boise -420 US MST/MDT
America/Phoenix -420 - MST
America/Los_Angeles -480 US PST/PDT
America/Vancouver -480 US PST/PDT
America/Tijuana -480 US PST/PDT
America/Anchorage -540 US AKST/AKDT
America/Halifax -240 US AST/ADT
America/St_Johns -210 US NST/NDT
Atlantic/Bermuda -240 US AST/ADT
Pacific/Honolulu -600 - HST
America/Regina -360 - CST
America/Mexico_City -360 - CST
America/Guatemala -360 - CST
America/Panama -300 - EST
America/Bogota -300 - -05
America/Lima -300 - -05
America/Caracas -240 - -04
America/Sao_Paulo -180 - -03
America/Argentina/Buenos_Aires -180 - -03
America/Montevideo -180 - -03
Europe/London 0 EU GMT/BST
Europe/Dublin 0 EU GMT/IST
Europe/Lisbon 0 EU WET/WEST
Atlantic/Canary 0 EU WET/WEST
Atlantic/Reykjavik 0 - GMT
Europe/Berlin 60 EU CET/CEST
Europe/Paris 60 EU CET/CEST
Europe/Madrid 60 EU CET/CEST
Europe/Rome 60 EU CET/CEST
Europe/Amsterdam 60 EU CET/CEST
Europe/Brussels 60 EU CET/CEST
Europe/Luxembourg 60 EU CET/CEST
Europe/Vienna 60 EU CET/CEST
Europe/Zurich 60 EU CET/CEST
Europe/Stockholm 60 EU CET/CEST
Europe/Oslo 60 EU CET/CEST
Europe/Copenhagen 60 EU CET/CEST
Europe/Warsaw 60 EU CET/CEST
Europe/Prague 60 EU CET/CEST
Europe/Budapest 60 EU CET/CEST
Europe/Belgrade 60 EU CET/CEST
Europe/Zagreb 60 EU CET/CEST
Europe/Ljubljana 60 EU CET/CEST
Europe/Bratislava 60 EU CET/CEST
Europe/Malta 60 EU CET/CEST
Europe/Monaco 60 EU CET/CEST
Europe/Athens 120 EU EET/EEST
Europe/Helsinki 120 EU EET/EEST
Europe/Kyiv 120 EU EET/EEST
Europe/Kiev 120 EU EET/EEST
Europe/Bucharest 120 EU EET/EEST
Europe/Sofia 120 EU EET/EEST
Europe/Riga 120 EU EET/EEST
Europe/Tallinn 120 EU EET/EEST
Europe/Vilnius 120 EU EET/EEST
Asia/Nicosia 120 EU EET/EEST
Europe/Istanbul 180 - +03
Europe/Moscow 180 - MSK
Europe/Minsk 180 - +03
Africa/Lagos 60 - WAT
Africa/Algiers 60 - CET
Africa/Accra 0 - GMT
Africa/Johannesburg 120 - SAST
Africa/Cairo 120 EG EET/EEST
Africa/Nairobi 180 - EAT
Africa/Addis_Ababa 180 - EAT
Asia/Jerusalem 120 IL IST/IDT
Asia/Riyadh 180 - +03
Asia/Baghdad 180 - +03
Asia/Tehran 210 - +0330
Asia/Dubai 240 - +04
Asia/Karachi 300 - PKT
Asia/Tashkent 300 - +05
Asia/Kolkata 330 - IST
Asia/Calcutta 330 - IST
Asia/Kathmandu 345 - +0545
Asia/Dhaka 360 - +06
Asia/Yangon 390 - +0630
Asia/Bangkok 420 - +07
Asia/Jakarta 420 - WIB
Asia/Ho_Chi_Minh 420 - +07
Asia/Shanghai 480 - CST
Asia/Hong_Kong 480 - HKT
Asia/Taipei 480 - CST
Asia/Singapore 480 - +08
Asia/Kuala_Lumpur 480 - +08
Asia/Manila 480 - PST
Australia/Perth 480 - AWST
Asia/Seoul 540 - KST
Asia/Tokyo 540 - JST
Australia/Darwin 570 - ACST
Australia/Adelaide 570 AU ACST/ACDT
Australia/Brisbane 600 - AEST
Australia/Sydney 600 AU AEST/AEDT
Australia/Melbourne 600 AU AEST/AEDT
Australia/Canberra 600 AU AEST/AEDT
Australia/Hobart 600 AU AEST/AEDT
Pacific/Guam 600 - ChST
Pacific/Auckland 720 NZ NZST/NZDT
Pacific/Fiji 720 - +12`;

// Old or alternative names that mean a zone above.
const ALIASES: string = `US/Eastern America/New_York
US/Central America/Chicago
US/Mountain America/Denver
US/Arizona America/Phoenix
US/Pacific America/Los_Angeles
US/Alaska America/Anchorage
US/Hawaii Pacific/Honolulu
Canada/Eastern America/Toronto
Canada/Pacific America/Vancouver
Europe/Belfast Europe/London
Asia/Saigon Asia/Ho_Chi_Minh
Asia/Rangoon Asia/Yangon
Asia/Tel_Aviv Asia/Jerusalem
Asia/Katmandu Asia/Kathmandu
Australia/ACT Australia/Canberra
Australia/NSW Australia/Sydney
Australia/Victoria Australia/Melbourne
NZ Pacific/Auckland
Japan Asia/Tokyo
PRC Asia/Shanghai
Singapore Asia/Singapore
Turkey Europe/Istanbul
Israel Asia/Jerusalem
Egypt Africa/Cairo
Zulu UTC
Universal UTC
Etc/GMT GMT`;

let zones: Array<Zone> | null = null;

function ruleId(s: string): i32 {
  if (s == "US") return RULE_US;
  if (s == "EU") return RULE_EU;
  if (s == "AU") return RULE_AU;
  if (s == "NZ") return RULE_NZ;
  if (s == "IL") return RULE_IL;
  if (s == "EG") return RULE_EG;
  return RULE_NONE;
}

function allZones(): Array<Zone> {
  let z = zones;
  if (z != null) return z;
  const out = new Array<Zone>();
  const lines = TABLE.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const f = lines[i].split(" ");
    const abbr = f[3].split("/");
    out.push(new Zone(f[0], <i32>parseInt(f[1]), ruleId(f[2]), abbr[0], abbr.length > 1 ? abbr[1] : abbr[0]));
  }
  zones = out;
  return out;
}

/** Names of every zone in the table (aliases not included). */
export function zoneNames(): Array<string> {
  const out = new Array<string>();
  const all = allZones();
  for (let i = 0; i < all.length; i++) out.push(all[i].name);
  return out;
}

function findByName(name: string): Zone | null {
  const all = allZones();
  const lower = name.toLowerCase();
  for (let i = 0; i < all.length; i++) if (all[i].name.toLowerCase() == lower) return all[i];
  const aliases = ALIASES.split("\n");
  for (let i = 0; i < aliases.length; i++) {
    const f = aliases[i].split(" ");
    if (f[0].toLowerCase() == lower) return findByName(f[1]);
  }
  return null;
}

function digitsValue(s: string): i32 {
  let v = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
    v = v * 10 + (c - 0x30);
  }
  return s.length == 0 ? -1 : v;
}

/** "+05:30", "-0800", "+9", "UTC+2", "GMT-03:30" as minutes east of UTC; i32.MIN_VALUE if not an offset. */
export function parseOffset(text: string): i32 {
  let s = text.trim();
  const upper = s.toUpperCase();
  if (upper.startsWith("UTC") || upper.startsWith("GMT")) s = s.substring(3);
  if (s.length == 0) return upper.length > 0 ? 0 : i32.MIN_VALUE;
  const sign = s.charCodeAt(0);
  if (sign != 0x2b && sign != 0x2d && sign != 0x2212) return i32.MIN_VALUE;
  s = s.substring(1);
  let h = -1;
  let m = 0;
  const colon = s.indexOf(":");
  if (colon >= 0) {
    h = digitsValue(s.substring(0, colon));
    m = digitsValue(s.substring(colon + 1));
  } else if (s.length <= 2) {
    h = digitsValue(s);
  } else if (s.length == 4) {
    h = digitsValue(s.substring(0, 2));
    m = digitsValue(s.substring(2));
  }
  if (h < 0 || h > 14 || m < 0 || m > 59) return i32.MIN_VALUE;
  const total = h * 60 + m;
  return sign == 0x2b ? total : -total;
}

/** The zone for a name, an offset, or null (the caller reports it). */
export function findZone(text: string): Zone | null {
  const name = text.trim();
  const z = findByName(name);
  if (z != null) return z;
  const off = parseOffset(name);
  if (off == i32.MIN_VALUE) return null;
  return new Zone(off == 0 ? "UTC" : "UTC" + formatOffset(off), off, RULE_NONE, off == 0 ? "UTC" : formatOffset(off), "");
}

/** "+05:30" / "-08:00" / "+00:00". */
export function formatOffset(minutes: i32): string {
  const sign = minutes < 0 ? "-" : "+";
  const m = minutes < 0 ? -minutes : minutes;
  const h = m / 60;
  const mm = m % 60;
  return sign + (h < 10 ? "0" : "") + h.toString() + ":" + (mm < 10 ? "0" : "") + mm.toString();
}

/** Day of month of the `n`th (1-based) weekday `wd` (0 = Sunday) of a month. */
function nthWeekday(year: i64, month: i32, wd: i32, n: i32): i32 {
  const first = weekday(daysFromCivil(year, month, 1));
  return 1 + ((wd - first + 7) % 7) + (n - 1) * 7;
}

/** Day of month of the last weekday `wd` of a month. */
function lastWeekday(year: i64, month: i32, wd: i32): i32 {
  const len = <i32>(daysFromCivil(month == 12 ? year + 1 : year, month == 12 ? 1 : month + 1, 1) - daysFromCivil(year, month, 1));
  const lastWd = weekday(daysFromCivil(year, month, len));
  return len - ((lastWd - wd + 7) % 7);
}

/** UTC ms of local wall time `day` of `month` at `minutes` after midnight, at `offsetMinutes`. */
function at(year: i64, month: i32, day: i32, minutes: i32, offsetMinutes: i32): i64 {
  return daysFromCivil(year, month, day) * MS_PER_DAY + <i64>(minutes - offsetMinutes) * MS_PER_MINUTE;
}

/** Whether DST is in effect at UTC instant `t` (ms) in `z`. */
export function isDst(z: Zone, t: i64): bool {
  if (z.rule == RULE_NONE) return false;
  const std = z.stdMinutes;
  const dst = std + 60;
  // The year of the local standard-time date (the transitions never straddle New Year).
  const year = civilFromDays(floorDiv(t + <i64>std * MS_PER_MINUTE, MS_PER_DAY)).year;
  if (z.rule == RULE_US) {
    const start = at(year, 3, nthWeekday(year, 3, 0, 2), 120, std);
    const end = at(year, 11, nthWeekday(year, 11, 0, 1), 120, dst);
    return t >= start && t < end;
  }
  if (z.rule == RULE_EU) {
    const start = at(year, 3, lastWeekday(year, 3, 0), 60, 0);
    const end = at(year, 10, lastWeekday(year, 10, 0), 60, 0);
    return t >= start && t < end;
  }
  if (z.rule == RULE_IL) {
    const start = at(year, 3, lastWeekday(year, 3, 0) - 2, 120, std);
    const end = at(year, 10, lastWeekday(year, 10, 0), 120, dst);
    return t >= start && t < end;
  }
  if (z.rule == RULE_EG) {
    const start = at(year, 4, lastWeekday(year, 4, 5), 0, std);
    const end = at(year, 10, lastWeekday(year, 10, 4), 24 * 60, dst);
    return t >= start && t < end;
  }
  // Southern hemisphere: DST spans New Year, so it is "outside" the April..October gap.
  const end = at(year, 4, nthWeekday(year, 4, 0, 1), 180, dst);
  const start = z.rule == RULE_AU ? at(year, 10, nthWeekday(year, 10, 0, 1), 120, std) : at(year, 9, lastWeekday(year, 9, 0), 120, std);
  return t < end || t >= start;
}

/** Offset from UTC at instant `t`, minutes. */
export function offsetAt(z: Zone, t: i64): i32 {
  return isDst(z, t) ? z.stdMinutes + 60 : z.stdMinutes;
}

/** The abbreviation in effect at `t` ("CEST", "+05:30"). */
export function abbrAt(z: Zone, t: i64): string {
  return isDst(z, t) ? z.dstAbbr : z.stdAbbr;
}

/** How a local wall time maps to an instant. */
export class Resolved {
  constructor(
    public t: i64,
    /** 0 normal, 1 ambiguous (clocks went back; the first occurrence is used), 2 skipped (clocks went forward; moved by the gap). */
    public kind: i32,
  ) {}
}

/** The instant of local wall-clock time `localMs` (ms since the epoch, as if UTC) in `z`. */
export function resolveLocal(z: Zone, localMs: i64): Resolved {
  const std = z.stdMinutes;
  const tStd = localMs - <i64>std * MS_PER_MINUTE;
  if (z.rule == RULE_NONE) return new Resolved(tStd, 0);
  const tDst = localMs - <i64>(std + 60) * MS_PER_MINUTE;
  const stdOk = offsetAt(z, tStd) == std;
  const dstOk = offsetAt(z, tDst) == std + 60;
  if (stdOk && dstOk) return new Resolved(tDst, 1);
  if (dstOk) return new Resolved(tDst, 0);
  if (stdOk) return new Resolved(tStd, 0);
  return new Resolved(tStd, 2);
}
