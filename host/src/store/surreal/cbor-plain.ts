/**
 * A CBOR encoder for plain JavaScript values, byte for byte what the SurrealDB SDK's `CborCodec`
 * (surrealdb 2.x, no value visitors) writes for them, several times cheaper.
 *
 * Why: the embedded engine takes every request as CBOR encoded in JavaScript on the main thread.
 * The SDK's encoder calls its replacer on every value (~17 symbol checks each, for strings and
 * numbers too), allocates a `TextEncoder` output per string and an `Object.entries` array per
 * object; for the journal's projection (a batch of up to 1,000 event rows every 200 ms) that was
 * ~0.1 ms of main-thread CPU per gateway turn at 50 sessions (docs/architecture.md, "Where a
 * durable turn's extra CPU goes"). The rows are plain: strings, integers, arrays, objects.
 *
 * What it encodes, as the SDK does: `undefined` as SurrealDB's NONE (tag 6 over null), `null`,
 * booleans, integers within ±2^53 as CBOR integers and other numbers as float64, strings as UTF-8
 * text, arrays, and objects whose prototype is `Object.prototype` or `null` (own enumerable string
 * keys in `Object.entries` order). Anything else (a `RecordId`, `Date`, `Map`, `Uint8Array`,
 * bigint, an integer past 2^53, a class instance) makes {@link encodePlainCbor} return undefined,
 * and the caller encodes the whole value with the SDK.
 */

const INITIAL_BYTES = 64 * 1024;
/** Kept between calls (one encode at a time: the function is synchronous), grown on demand. */
let buf = Buffer.allocUnsafe(INITIAL_BYTES);
let pos = 0;

/** Thrown inside the encoder when a value is not plain; never escapes {@link encodePlainCbor}. */
const NOT_PLAIN = Symbol("not plain");

function claim(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
}

/** A CBOR head: major type and length/value (as the SDK's `writeMajor` for numbers below 2^53). */
function head(major: number, n: number): void {
  const base = major << 5;
  if (n < 24) {
    claim(1);
    buf[pos++] = base + n;
  } else if (n < 256) {
    claim(2);
    buf[pos++] = base + 24;
    buf[pos++] = n;
  } else if (n < 65536) {
    claim(3);
    buf[pos++] = base + 25;
    buf.writeUInt16BE(n, pos);
    pos += 2;
  } else if (n < 4294967296) {
    claim(5);
    buf[pos++] = base + 26;
    buf.writeUInt32BE(n, pos);
    pos += 4;
  } else {
    // Two 32-bit halves, not `writeBigUInt64BE(BigInt(n))`: every event row's `at` (ms since the
    // epoch, above 2^32) came here, and the BigInt and its conversion cost more than the row's
    // other numbers together. Same bytes (n is an integer below 2^53).
    claim(9);
    buf[pos++] = base + 27;
    buf.writeUInt32BE(Math.floor(n / 4294967296), pos);
    buf.writeUInt32BE(n >>> 0, pos + 4);
    pos += 8;
  }
}

/** Bytes of the head of a length `n` (major type aside). */
function headBytes(n: number): number {
  return n < 24 ? 1 : n < 256 ? 2 : n < 65536 ? 3 : n < 4294967296 ? 5 : 9;
}

/** Strings shorter than this are tried as ASCII in JavaScript (field names, kinds, ids, keys). */
const SHORT_TEXT = 24;

function text(s: string): void {
  const n = s.length;
  if (n < SHORT_TEXT) {
    // Most strings of a request are short ASCII (every object key): copied here, they skip
    // `Buffer#write`'s call into C++ (~2x the cost of the whole loop for a field name).
    claim(1 + n);
    let p = pos + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 0x80) {
        p = -1;
        break;
      }
      buf[p++] = c;
    }
    if (p >= 0) {
      buf[pos] = 0x60 + n; // major type 3, length below 24: one head byte
      pos = p;
      return;
    }
  }
  // UTF-8 takes 1 to 3 bytes per UTF-16 unit: the text is written after a head sized for 1 (ASCII,
  // the usual case, needs no move: the text of a turn's reply used to be moved back behind a head
  // sized for 3), then moved forward if its real length needs a longer head.
  const max = n * 3;
  const guess = headBytes(n);
  claim(headBytes(max) + max);
  const start = pos;
  const written = buf.write(s, start + guess, "utf8");
  const real = headBytes(written);
  if (real !== guess) buf.copy(buf, start + real, start + guess, start + guess + written);
  head(3, written);
  pos = start + real + written;
}

function value(v: unknown): void {
  switch (typeof v) {
    case "string":
      text(v);
      return;
    case "number":
      if (Number.isInteger(v)) {
        if (v >= 0 && v <= 9007199254740992) head(0, v);
        else if (v < 0 && v >= -9007199254740992) head(1, -(v + 1));
        else throw NOT_PLAIN;
      } else {
        claim(9);
        buf[pos++] = 0xfb;
        buf.writeDoubleBE(v, pos);
        pos += 8;
      }
      return;
    case "boolean":
      claim(1);
      buf[pos++] = v ? 0xf5 : 0xf4;
      return;
    case "undefined":
      // NONE: tag 6 over null.
      claim(2);
      buf[pos++] = 0xc6;
      buf[pos++] = 0xf6;
      return;
    case "object": {
      if (v === null) {
        claim(1);
        buf[pos++] = 0xf6;
        return;
      }
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) throw NOT_PLAIN;
        head(4, v.length);
        for (let i = 0; i < v.length; i++) value(v[i]);
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
      const keys = Object.keys(v);
      // The SDK's replacer looks for its own symbol-keyed markers; an object carrying symbols is not plain.
      if (Object.getOwnPropertySymbols(v).length > 0) throw NOT_PLAIN;
      head(5, keys.length);
      for (const k of keys) {
        text(k);
        value((v as Record<string, unknown>)[k]);
      }
      return;
    }
    default:
      throw NOT_PLAIN;
  }
}

/**
 * Encodes `input` as the SDK's CBOR codec would, when every value in it is plain (see the module
 * comment). @returns a fresh copy of the bytes, or undefined when something is not plain (the
 * caller then uses the SDK's encoder; nothing is half-written anywhere)
 */
export function encodePlainCbor(input: unknown): Uint8Array | undefined {
  pos = 0;
  try {
    value(input);
  } catch (err) {
    if (err === NOT_PLAIN) return undefined;
    throw err;
  }
  const out = Uint8Array.prototype.slice.call(buf, 0, pos);
  // A one-off huge request does not keep its buffer.
  if (buf.length > 16 * INITIAL_BYTES) buf = Buffer.allocUnsafe(INITIAL_BYTES);
  return out;
}
