// JSON text <-> Value (RFC 8259), for tools that read or produce JSON documents: the model hands
// a tool JSON as a string, an HTTP API answers JSON, a tool returns structured data as text.
//
// Numbers: an integer literal of up to 18 digits becomes an Int value, anything else a Float
// (nearest double, exactly as JavaScript parses it). Objects keep their key order; a duplicate
// key keeps its last value. Nesting is limited to MAX_JSON_DEPTH so that hostile input cannot
// overflow the Wasm stack.

import { formatNumber, parseNumber } from "./number";
import { Value } from "./msgpack";

/** Deepest array/object nesting `JsonReader` accepts. */
export const MAX_JSON_DEPTH: i32 = 64;

/**
 * Parses one JSON text. `read()` returns the value, or null with `error` set to a message that
 * names the position (1-based line and column).
 */
export class JsonReader {
  private s: string;
  private i: i32 = 0;
  private depth: i32 = 0;
  /** Why `read()` returned null ("" when it did not). */
  error: string = "";

  constructor(text: string) {
    this.s = text;
  }

  /** The whole text as one value (surrounding whitespace allowed, nothing else). */
  read(): Value | null {
    this.skipSpace();
    const v = this.value();
    if (v == null) return null;
    this.skipSpace();
    if (this.i < this.s.length) return this.fail("unexpected text after the JSON value");
    return v;
  }

  private fail(message: string): Value | null {
    if (this.error.length == 0) {
      let line = 1;
      let col = 1;
      for (let k = 0; k < this.i && k < this.s.length; k++) {
        if (this.s.charCodeAt(k) == 0x0a) {
          line++;
          col = 1;
        } else {
          col++;
        }
      }
      this.error = message + " at line " + line.toString() + ", column " + col.toString();
    }
    return null;
  }

  private skipSpace(): void {
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c != 0x20 && c != 0x09 && c != 0x0a && c != 0x0d) break;
      this.i++;
    }
  }

  private value(): Value | null {
    if (this.i >= this.s.length) return this.fail("unexpected end of the JSON text");
    const c = this.s.charCodeAt(this.i);
    if (c == 0x7b) return this.object();
    if (c == 0x5b) return this.array();
    if (c == 0x22) {
      const str = this.string();
      return str == null ? null : Value.str(str);
    }
    if (c == 0x2d || (c >= 0x30 && c <= 0x39)) return this.number();
    if (this.s.startsWith("true", this.i)) {
      this.i += 4;
      return Value.bool(true);
    }
    if (this.s.startsWith("false", this.i)) {
      this.i += 5;
      return Value.bool(false);
    }
    if (this.s.startsWith("null", this.i)) {
      this.i += 4;
      return Value.nil();
    }
    return this.fail("unexpected character '" + this.s.charAt(this.i) + "'");
  }

  private enter(): bool {
    if (this.depth >= MAX_JSON_DEPTH) {
      this.fail("nesting deeper than " + MAX_JSON_DEPTH.toString() + " levels");
      return false;
    }
    this.depth++;
    return true;
  }

  private object(): Value | null {
    if (!this.enter()) return null;
    this.i++; // {
    const out = Value.map();
    this.skipSpace();
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 0x7d) {
      this.i++;
      this.depth--;
      return out;
    }
    for (;;) {
      this.skipSpace();
      if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 0x22) return this.fail("expected a string key");
      const key = this.string();
      if (key == null) return null;
      this.skipSpace();
      if (this.i >= this.s.length || this.s.charCodeAt(this.i) != 0x3a) return this.fail("expected ':'");
      this.i++;
      this.skipSpace();
      const v = this.value();
      if (v == null) return null;
      out.set(key, v);
      this.skipSpace();
      if (this.i >= this.s.length) return this.fail("unterminated object");
      const c = this.s.charCodeAt(this.i++);
      if (c == 0x7d) break;
      if (c != 0x2c) {
        this.i--;
        return this.fail("expected ',' or '}'");
      }
    }
    this.depth--;
    return out;
  }

  private array(): Value | null {
    if (!this.enter()) return null;
    this.i++; // [
    const out = Value.array();
    this.skipSpace();
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 0x5d) {
      this.i++;
      this.depth--;
      return out;
    }
    for (;;) {
      this.skipSpace();
      const v = this.value();
      if (v == null) return null;
      out.push(v);
      this.skipSpace();
      if (this.i >= this.s.length) return this.fail("unterminated array");
      const c = this.s.charCodeAt(this.i++);
      if (c == 0x5d) break;
      if (c != 0x2c) {
        this.i--;
        return this.fail("expected ',' or ']'");
      }
    }
    this.depth--;
    return out;
  }

  private hex4(): i32 {
    if (this.i + 4 > this.s.length) return -1;
    let v = 0;
    for (let k = 0; k < 4; k++) {
      const c = this.s.charCodeAt(this.i + k);
      let d: i32 = -1;
      if (c >= 0x30 && c <= 0x39) d = c - 0x30;
      else if (c >= 0x61 && c <= 0x66) d = c - 0x61 + 10;
      else if (c >= 0x41 && c <= 0x46) d = c - 0x41 + 10;
      if (d < 0) return -1;
      v = (v << 4) | d;
    }
    this.i += 4;
    return v;
  }

  /** A string literal starting at the opening quote; null (error set) if malformed. */
  private string(): string | null {
    this.i++; // "
    const parts = new Array<string>();
    let start = this.i;
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c == 0x22) {
        parts.push(this.s.substring(start, this.i));
        this.i++;
        return parts.join("");
      }
      if (c < 0x20) {
        this.fail("control character in a string");
        return null;
      }
      if (c != 0x5c) {
        this.i++;
        continue;
      }
      parts.push(this.s.substring(start, this.i));
      this.i++;
      if (this.i >= this.s.length) break;
      const e = this.s.charCodeAt(this.i++);
      if (e == 0x22) parts.push("\"");
      else if (e == 0x5c) parts.push("\\");
      else if (e == 0x2f) parts.push("/");
      else if (e == 0x62) parts.push("\b");
      else if (e == 0x66) parts.push("\f");
      else if (e == 0x6e) parts.push("\n");
      else if (e == 0x72) parts.push("\r");
      else if (e == 0x74) parts.push("\t");
      else if (e == 0x75) {
        const u = this.hex4();
        if (u < 0) {
          this.fail("bad \\u escape");
          return null;
        }
        parts.push(String.fromCharCode(u));
      } else {
        this.i--;
        this.fail("bad escape '\\" + String.fromCharCode(e) + "'");
        return null;
      }
      start = this.i;
    }
    this.fail("unterminated string");
    return null;
  }

  private number(): Value | null {
    const begin = this.i;
    let neg = false;
    if (this.s.charCodeAt(this.i) == 0x2d) {
      neg = true;
      this.i++;
    }
    const digitsStart = this.i;
    while (this.i < this.s.length && isDigit(this.s.charCodeAt(this.i))) this.i++;
    const intDigits = this.i - digitsStart;
    if (intDigits == 0) return this.fail("expected a digit");
    if (intDigits > 1 && this.s.charCodeAt(digitsStart) == 0x30) {
      this.i = digitsStart + 1;
      return this.fail("leading zero in a number");
    }
    let integer = true;
    if (this.i < this.s.length && this.s.charCodeAt(this.i) == 0x2e) {
      integer = false;
      this.i++;
      const f = this.i;
      while (this.i < this.s.length && isDigit(this.s.charCodeAt(this.i))) this.i++;
      if (this.i == f) return this.fail("expected a digit after '.'");
    }
    if (this.i < this.s.length && (this.s.charCodeAt(this.i) == 0x65 || this.s.charCodeAt(this.i) == 0x45)) {
      integer = false;
      this.i++;
      if (this.i < this.s.length && (this.s.charCodeAt(this.i) == 0x2b || this.s.charCodeAt(this.i) == 0x2d)) this.i++;
      const e = this.i;
      while (this.i < this.s.length && isDigit(this.s.charCodeAt(this.i))) this.i++;
      if (this.i == e) return this.fail("expected a digit in the exponent");
    }
    if (integer && intDigits <= 18) {
      let v: i64 = 0;
      for (let k = digitsStart; k < this.i; k++) v = v * 10 + <i64>(this.s.charCodeAt(k) - 0x30);
      return Value.int(neg ? -v : v);
    }
    const mag = parseNumber(this.s.substring(digitsStart, this.i));
    if (isNaN(mag)) {
      this.i = begin;
      return this.fail("malformed number");
    }
    return Value.float(neg ? -mag : mag);
  }
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

/** Parses a JSON text; null if it is not valid JSON (use `JsonReader` for the reason). */
export function parseJson(text: string): Value | null {
  return new JsonReader(text).read();
}

const HEX = "0123456789abcdef";

/** `s` as a JSON string literal (quotes included). */
export function jsonString(s: string): string {
  const parts = new Array<string>();
  parts.push("\"");
  let start = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x20 && c != 0x22 && c != 0x5c) continue;
    parts.push(s.substring(start, i));
    if (c == 0x22) parts.push("\\\"");
    else if (c == 0x5c) parts.push("\\\\");
    else if (c == 0x0a) parts.push("\\n");
    else if (c == 0x0d) parts.push("\\r");
    else if (c == 0x09) parts.push("\\t");
    else if (c == 0x08) parts.push("\\b");
    else if (c == 0x0c) parts.push("\\f");
    else parts.push("\\u00" + HEX.charAt(c >> 4) + HEX.charAt(c & 15));
    start = i + 1;
  }
  parts.push(s.substring(start));
  parts.push("\"");
  return parts.join("");
}

const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

function base64(data: Uint8Array): string {
  const parts = new Array<string>();
  let i = 0;
  for (; i + 2 < data.length; i += 3) {
    const n = (<u32>data[i] << 16) | (<u32>data[i + 1] << 8) | <u32>data[i + 2];
    parts.push(B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + B64.charAt((n >> 6) & 63) + B64.charAt(n & 63));
  }
  if (i < data.length) {
    const two = i + 1 < data.length;
    const n = (<u32>data[i] << 16) | (two ? <u32>data[i + 1] << 8 : 0);
    parts.push(B64.charAt(n >> 18) + B64.charAt((n >> 12) & 63) + (two ? B64.charAt((n >> 6) & 63) : "=") + "=");
  }
  return parts.join("");
}

function writeJson(v: Value, parts: Array<string>, indent: i32, level: i32): void {
  if (v.isNil()) parts.push("null");
  else if (v.isBool()) parts.push(v.boolValue ? "true" : "false");
  else if (v.isInt()) {
    const f = v.asNumber();
    parts.push(Math.abs(f) < 9007199254740992.0 ? v.intValue.toString() : formatNumber(f));
  } else if (v.isFloat()) {
    parts.push(isFinite(v.floatValue) ? formatNumber(v.floatValue) : "null");
  } else if (v.isString()) parts.push(jsonString(v.strValue));
  else if (v.isBin()) {
    const b = v.binValue;
    parts.push(jsonString(b != null ? base64(b) : ""));
  } else if (v.isArray() || v.isMap()) {
    const isMap = v.isMap();
    const n = v.length;
    parts.push(isMap ? "{" : "[");
    for (let i = 0; i < n; i++) {
      if (i > 0) parts.push(",");
      if (indent > 0) parts.push("\n" + " ".repeat(indent * (level + 1)));
      if (isMap) {
        const k = v.keyAt(i);
        parts.push(k.isString() ? jsonString(k.strValue) : jsonString(toJson(k)));
        parts.push(indent > 0 ? ": " : ":");
      }
      writeJson(v.at(i), parts, indent, level + 1);
    }
    if (indent > 0 && n > 0) parts.push("\n" + " ".repeat(indent * level));
    parts.push(isMap ? "}" : "]");
  } else {
    parts.push("null"); // ext values have no JSON form
  }
}

/**
 * `v` as JSON text: compact, or pretty-printed with `indent` spaces per level. Bin values become
 * base64 strings, non-finite floats and ext values `null`, non-string map keys their JSON text.
 */
export function toJson(v: Value, indent: i32 = 0): string {
  const parts = new Array<string>();
  writeJson(v, parts, indent, 0);
  return parts.join("");
}
