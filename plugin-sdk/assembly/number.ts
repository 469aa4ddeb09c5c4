// Exact decimal <-> f64 conversion.
//
// AssemblyScript's own f64.toString() (Grisu2) is round-trip safe but not always the shortest
// or closest string (0.1 + 0.2 prints as 0.30000000000000007, sqrt(2) as 1.4142135623730952),
// which reads as wrong arithmetic to a user. This module formats like JavaScript's
// Number.prototype.toString — shortest digits that round-trip, closest to the exact value —
// and parses decimals with correct rounding. It does so the slow, obviously-correct way: exact
// big-integer expansion of doubles and of their rounding boundaries (a few microseconds per
// number, which is irrelevant next to a tool call).

/** A non-negative exact decimal: int(digits) × 10^exp. `digits` has no leading or trailing
 *  zeros; zero is the empty string. */
class Dec {
  constructor(public digits: string, public exp: i32) {}

  /** Position of the decimal point relative to the first digit: value = 0.digits × 10^point. */
  get point(): i32 {
    return this.digits.length + this.exp;
  }
}

/** Little-endian u32 limbs. */
function mulSmall(limbs: Array<u32>, f: u32): void {
  let carry: u64 = 0;
  for (let i = 0; i < limbs.length; i++) {
    const t = <u64>limbs[i] * <u64>f + carry;
    limbs[i] = <u32>t;
    carry = t >> 32;
  }
  if (carry != 0) limbs.push(<u32>carry);
}

/** Divides in place, returns the remainder, drops leading zero limbs. */
function divSmall(limbs: Array<u32>, d: u32): u32 {
  let rem: u64 = 0;
  for (let i = limbs.length - 1; i >= 0; i--) {
    const cur = (rem << 32) | <u64>limbs[i];
    limbs[i] = <u32>(cur / <u64>d);
    rem = cur % <u64>d;
  }
  while (limbs.length > 0 && limbs[limbs.length - 1] == 0) limbs.pop();
  return <u32>rem;
}

/** Exact decimal value of mant × 2^e2 (mant < 2^63). */
function exactDec(mant: u64, e2: i32): Dec {
  if (mant == 0) return new Dec("", 0);
  const limbs = new Array<u32>();
  limbs.push(<u32>mant);
  if ((mant >> 32) != 0) limbs.push(<u32>(mant >> 32));
  let exp10 = 0;
  if (e2 >= 0) {
    let s = e2;
    while (s >= 31) { mulSmall(limbs, 1 << 31); s -= 31; }
    if (s > 0) mulSmall(limbs, <u32>1 << <u32>s);
  } else {
    // m / 2^k = m × 5^k / 10^k
    let k = -e2;
    exp10 = e2;
    while (k >= 13) { mulSmall(limbs, 1220703125); k -= 13; } // 5^13
    let f: u32 = 1;
    while (k > 0) { f *= 5; k--; }
    if (f > 1) mulSmall(limbs, f);
  }
  // Base-10^9 chunks, least significant first.
  const chunks = new Array<u32>();
  while (limbs.length > 0) chunks.push(divSmall(limbs, 1000000000));
  let s = chunks[chunks.length - 1].toString();
  for (let i = chunks.length - 2; i >= 0; i--) s += chunks[i].toString().padStart(9, "0");
  return trimDec(s, exp10);
}

function trimDec(digits: string, exp: i32): Dec {
  let start = 0;
  while (start < digits.length && digits.charCodeAt(start) == 0x30) start++;
  let end = digits.length;
  while (end > start && digits.charCodeAt(end - 1) == 0x30) end--;
  if (start == end) return new Dec("", 0);
  return new Dec(digits.substring(start, end), exp + (digits.length - end));
}

/** Sign of a - b. */
function cmpDec(a: Dec, b: Dec): i32 {
  const az = a.digits.length == 0;
  const bz = b.digits.length == 0;
  if (az || bz) return az && bz ? 0 : (az ? -1 : 1);
  if (a.point != b.point) return a.point < b.point ? -1 : 1;
  const n = max(a.digits.length, b.digits.length);
  for (let i = 0; i < n; i++) {
    const ca = i < a.digits.length ? a.digits.charCodeAt(i) : 0x30;
    const cb = i < b.digits.length ? b.digits.charCodeAt(i) : 0x30;
    if (ca != cb) return ca < cb ? -1 : 1;
  }
  return 0;
}

/** The IEEE fields of a positive finite double: v = mant × 2^e2. */
class Parts {
  mant: u64 = 0;
  e2: i32 = 0;
  biased: i32 = 0;
}

function partsOf(v: f64): Parts {
  const bits = reinterpret<u64>(v);
  const p = new Parts();
  p.biased = <i32>((bits >> 52) & 0x7ff);
  const frac = bits & 0xfffffffffffff;
  if (p.biased == 0) {
    p.mant = frac;
    p.e2 = -1074;
  } else {
    p.mant = frac | (<u64>1 << 52);
    p.e2 = p.biased - 1075;
  }
  return p;
}

/** Lower rounding boundary (midpoint to the previous double); narrower below powers of two. */
function lowBound(p: Parts): Dec {
  if (p.mant == (<u64>1 << 52) && p.biased > 1) return exactDec(4 * p.mant - 1, p.e2 - 2);
  return exactDec(2 * p.mant - 1, p.e2 - 1);
}

function highBound(p: Parts): Dec {
  return exactDec(2 * p.mant + 1, p.e2 - 1);
}

/** `digits` cut to k digits, optionally plus one unit in the last place. */
function truncDec(d: Dec, k: i32, up: bool): Dec {
  let kept = d.digits.substring(0, k);
  const exp = d.exp + (d.digits.length - k);
  if (!up) return trimDec(kept, exp);
  // Increment the decimal string with carry.
  const codes = new Array<i32>(k);
  for (let i = 0; i < k; i++) codes[i] = kept.charCodeAt(i);
  let i = k - 1;
  while (i >= 0 && codes[i] == 0x39) { codes[i] = 0x30; i--; }
  let s = "";
  if (i < 0) s = "1";
  else codes[i]++;
  for (let j = 0; j < k; j++) s += String.fromCharCode(codes[j]);
  return trimDec(s, exp);
}

function inside(c: Dec, low: Dec, high: Dec, inclusive: bool): bool {
  const lo = cmpDec(c, low);
  const hi = cmpDec(c, high);
  return inclusive ? lo >= 0 && hi <= 0 : lo > 0 && hi < 0;
}

/** Shortest digits that parse back to `v` (> 0, finite), the closest such at that length. */
function shortest(v: f64): Dec {
  const p = partsOf(v);
  const exact = exactDec(p.mant, p.e2);
  const low = lowBound(p);
  const high = highBound(p);
  // Round-half-even on parse means a boundary belongs to v exactly when v's mantissa is even.
  const inclusive = (p.mant & 1) == 0;
  const len = exact.digits.length;
  for (let k = 1; k < len; k++) {
    const down = truncDec(exact, k, false);
    const up = truncDec(exact, k, true);
    // Nearer candidate first: compare the dropped tail with one half.
    const next = exact.digits.charCodeAt(k);
    let preferUp = next > 0x35 || (next == 0x35 && k + 1 < len);
    if (next == 0x35 && k + 1 == len) preferUp = ((exact.digits.charCodeAt(k - 1) - 0x30) & 1) == 1;
    const first = preferUp ? up : down;
    const second = preferUp ? down : up;
    if (inside(first, low, high, inclusive)) return first;
    if (inside(second, low, high, inclusive)) return second;
  }
  return exact;
}

/**
 * Formats `v` exactly like JavaScript's `String(v)`: shortest round-trip digits, plain
 * notation for 1e-7 < |v| < 1e21, otherwise `d.ddde±x`; `NaN`, `Infinity`, `-Infinity`;
 * -0 prints as `0`.
 */
export function formatNumber(v: f64): string {
  if (isNaN(v)) return "NaN";
  if (!isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (v == 0) return "0";
  // Integers below 2^53 are exact and JavaScript prints them as plain digits: skip the bignums.
  if (Math.abs(v) < 9007199254740992.0 && Math.floor(v) == v) return (<i64>v).toString();
  const neg = v < 0;
  const d = shortest(neg ? -v : v);
  const s = d.digits;
  const k = s.length;
  const n = d.point;
  let out: string;
  if (k <= n && n <= 21) {
    out = s + "0".repeat(n - k);
  } else if (0 < n && n <= 21) {
    out = s.substring(0, n) + "." + s.substring(n);
  } else if (-6 < n && n <= 0) {
    out = "0." + "0".repeat(-n) + s;
  } else {
    const e = n - 1;
    const mant = k == 1 ? s : s.substring(0, 1) + "." + s.substring(1);
    out = mant + "e" + (e < 0 ? "-" : "+") + abs(e).toString();
  }
  return neg ? "-" + out : out;
}

/** 10^k for 0 <= k <= 22, exactly. */
function pow10(k: i32): f64 {
  let p: f64 = 1;
  for (let i = 0; i < k; i++) p *= 10;
  return p;
}

/** ~target: up to 19 leading digits, scaled by exact powers of ten (each step rounds once). */
function estimate(target: Dec): f64 {
  const used = min(target.digits.length, 19);
  let m: u64 = 0;
  for (let i = 0; i < used; i++) m = m * 10 + <u64>(target.digits.charCodeAt(i) - 0x30);
  let v = <f64>m;
  let e = target.exp + (target.digits.length - used);
  while (e >= 22) { v *= 1e22; e -= 22; }
  while (e <= -22) { v /= 1e22; e += 22; }
  const p = pow10(abs(e));
  return e >= 0 ? v * p : v / p;
}

function isDigitCode(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

/**
 * Parses an unsigned decimal `digits[.digits][(e|E)[+|-]digits]` (".5" and "5." allowed) to the
 * nearest double (ties to even), like JavaScript's `Number()` on the same text. Returns NaN if
 * `text` is not of that form; overflow gives Infinity, underflow 0.
 */
export function parseNumber(text: string): f64 {
  let digits = "";
  let exp: i64 = 0;
  let i = 0;
  let seen = 0;
  const n = text.length;
  while (i < n && isDigitCode(text.charCodeAt(i))) { digits += text.charAt(i); i++; seen++; }
  if (i < n && text.charCodeAt(i) == 0x2e) {
    i++;
    while (i < n && isDigitCode(text.charCodeAt(i))) { digits += text.charAt(i); exp--; i++; seen++; }
  }
  if (seen == 0) return NaN;
  if (i < n && (text.charCodeAt(i) == 0x65 || text.charCodeAt(i) == 0x45)) {
    i++;
    let sign: i64 = 1;
    if (i < n && (text.charCodeAt(i) == 0x2b || text.charCodeAt(i) == 0x2d)) {
      if (text.charCodeAt(i) == 0x2d) sign = -1;
      i++;
    }
    if (i >= n || !isDigitCode(text.charCodeAt(i))) return NaN;
    let e: i64 = 0;
    while (i < n && isDigitCode(text.charCodeAt(i))) {
      // Saturate: anything past ±1e6 is already far outside the double range.
      if (e < 1000000) e = e * 10 + <i64>(text.charCodeAt(i) - 0x30);
      i++;
    }
    exp += sign * e;
  }
  if (i != n) return NaN;
  if (exp > 1000000) exp = 1000000;
  if (exp < -1000000) exp = -1000000;
  const target = trimDec(digits, <i32>exp);
  if (target.digits.length == 0) return 0;
  if (target.point > 400) return Infinity;
  if (target.point < -400) return 0;
  // Clinger's fast path: up to 15 digits are exact in a double, and so is 10^k for k <= 22,
  // so one multiplication or division rounds correctly by IEEE rules.
  if (target.digits.length <= 15 && target.exp >= -22 && target.exp <= 22) {
    const m = <f64>I64.parseInt(target.digits);
    const scale = pow10(abs(target.exp));
    return target.exp >= 0 ? m * scale : m / scale;
  }

  // Start from an estimate a few ulps off at most and step towards the exact answer by
  // comparing against rounding boundaries. (The built-in parseFloat is not used: it can be
  // off by orders of magnitude for long mantissas with large exponents.)
  let v = estimate(target);
  const maxHigh = highBound(partsOf(f64.MAX_VALUE));
  for (let guard = 0; guard < 64; guard++) {
    if (!isFinite(v)) {
      if (cmpDec(target, maxHigh) < 0) { v = f64.MAX_VALUE; continue; }
      break;
    }
    if (v == 0) {
      // Halfway to the smallest subnormal ties to even, i.e. to 0.
      if (cmpDec(target, exactDec(1, -1075)) > 0) { v = reinterpret<f64>(<u64>1); continue; }
      break;
    }
    const p = partsOf(v);
    const odd = (p.mant & 1) == 1;
    const hi = cmpDec(target, highBound(p));
    if (hi > 0 || (hi == 0 && odd)) { v = reinterpret<f64>(reinterpret<u64>(v) + 1); continue; }
    const lo = cmpDec(target, lowBound(p));
    if (lo < 0 || (lo == 0 && odd)) { v = reinterpret<f64>(reinterpret<u64>(v) - 1); continue; }
    break;
  }
  return v;
}
