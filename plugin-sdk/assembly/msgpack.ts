// A small standard-MessagePack codec (https://github.com/msgpack/msgpack/blob/master/spec.md):
// nil, bool, int (signed and unsigned, up to 64-bit), float32/64, str, bin, array, map, ext.
// Ext values (the timestamp ext -1 included) are kept opaque: type and payload bytes, re-encoded
// unchanged. The exoclaw wire shapes do not use ext.
//
// Encoding is canonical within a family: an integer gets its smallest encoding, a float the
// smallest encoding that holds it exactly (float32 when the value survives the narrowing, else
// float64), str/bin/array/map/ext the smallest header for their length. Integers and floats
// are never converted into each other. Checked against the msgpack-test-suite data set inside
// the guest (tests/sdk/msgpack-suite.test.ts).

/** Which MessagePack family a `Value` holds. Integers and floats are kept apart so that an
 *  integer survives a round trip without turning into a float on the host. */
export const enum ValueKind {
  Nil = 0,
  Bool = 1,
  Int = 2,
  Float = 3,
  Str = 4,
  Bin = 5,
  Array = 6,
  Map = 7,
  /** An extension value: `extType` (-128..127) and the payload bytes in `binValue`. */
  Ext = 8,
}

/** A decoded (or to-be-encoded) MessagePack value. */
export class Value {
  kind: ValueKind = ValueKind.Nil;
  boolValue: bool = false;
  /** The integer; when `bigUnsigned` is set, the bits of a u64 above i64.MAX_VALUE. */
  intValue: i64 = 0;
  /** Set for an integer above i64.MAX_VALUE (MessagePack uint64): read it as `uintValue`. */
  bigUnsigned: bool = false;
  floatValue: f64 = 0;
  strValue: string = "";
  /** Bytes of a bin value, or the payload of an ext value. */
  binValue: Uint8Array | null = null;
  /** Type of an ext value (negative types are reserved by the spec; -1 is the timestamp). */
  extType: i8 = 0;
  /** Array elements, or map values (parallel to `keys`). */
  items: Array<Value> | null = null;
  /** Map keys; MessagePack allows any type, lookups by name only match string keys. */
  keys: Array<Value> | null = null;

  static nil(): Value {
    return new Value();
  }

  static bool(v: bool): Value {
    const r = new Value();
    r.kind = ValueKind.Bool;
    r.boolValue = v;
    return r;
  }

  static int(v: i64): Value {
    const r = new Value();
    r.kind = ValueKind.Int;
    r.intValue = v;
    return r;
  }

  /** An unsigned 64-bit integer; values above i64.MAX_VALUE are flagged `bigUnsigned`. */
  static uint(v: u64): Value {
    const r = new Value();
    r.kind = ValueKind.Int;
    r.intValue = <i64>v;
    r.bigUnsigned = v > <u64>i64.MAX_VALUE;
    return r;
  }

  static float(v: f64): Value {
    const r = new Value();
    r.kind = ValueKind.Float;
    r.floatValue = v;
    return r;
  }

  static str(v: string): Value {
    const r = new Value();
    r.kind = ValueKind.Str;
    r.strValue = v;
    return r;
  }

  static bin(v: Uint8Array): Value {
    const r = new Value();
    r.kind = ValueKind.Bin;
    r.binValue = v;
    return r;
  }

  /** An ext value of `type` with payload `data` (kept as given, not copied). */
  static ext(type: i8, data: Uint8Array): Value {
    const r = new Value();
    r.kind = ValueKind.Ext;
    r.extType = type;
    r.binValue = data;
    return r;
  }

  static array(): Value {
    const r = new Value();
    r.kind = ValueKind.Array;
    r.items = new Array<Value>();
    return r;
  }

  static map(): Value {
    const r = new Value();
    r.kind = ValueKind.Map;
    r.items = new Array<Value>();
    r.keys = new Array<Value>();
    return r;
  }

  isNil(): bool { return this.kind == ValueKind.Nil; }
  isBool(): bool { return this.kind == ValueKind.Bool; }
  isInt(): bool { return this.kind == ValueKind.Int; }
  isFloat(): bool { return this.kind == ValueKind.Float; }
  isNumber(): bool { return this.kind == ValueKind.Int || this.kind == ValueKind.Float; }
  isString(): bool { return this.kind == ValueKind.Str; }
  isBin(): bool { return this.kind == ValueKind.Bin; }
  isArray(): bool { return this.kind == ValueKind.Array; }
  isMap(): bool { return this.kind == ValueKind.Map; }
  isExt(): bool { return this.kind == ValueKind.Ext; }

  /** The integer as u64 (meaningful for non-negative integers, and for `bigUnsigned` ones). */
  get uintValue(): u64 {
    return <u64>this.intValue;
  }

  /** The number as f64 (ints converted), or NaN if this is not a number. */
  asNumber(): f64 {
    if (this.kind == ValueKind.Int) return this.bigUnsigned ? <f64><u64>this.intValue : <f64>this.intValue;
    if (this.kind == ValueKind.Float) return this.floatValue;
    return NaN;
  }

  /** Element count of an array or map, 0 otherwise. */
  get length(): i32 {
    const items = this.items;
    return items == null ? 0 : items.length;
  }

  /** Array element / map value at `i`. Traps (abort) if out of range. */
  at(i: i32): Value {
    return (<Array<Value>>this.items)[i];
  }

  /** Map key at `i`. Traps (abort) if out of range or not a map. */
  keyAt(i: i32): Value {
    return (<Array<Value>>this.keys)[i];
  }

  /** Map lookup by string key; null if absent or not a map. First match wins. */
  get(key: string): Value | null {
    if (this.kind != ValueKind.Map) return null;
    const keys = <Array<Value>>this.keys;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k.kind == ValueKind.Str && k.strValue == key) return (<Array<Value>>this.items)[i];
    }
    return null;
  }

  /** Sets a string-keyed map entry (replacing an existing one); returns `this` for chaining. */
  set(key: string, v: Value): Value {
    assert(this.kind == ValueKind.Map, "Value.set on a non-map");
    const keys = <Array<Value>>this.keys;
    const items = <Array<Value>>this.items;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i];
      if (k.kind == ValueKind.Str && k.strValue == key) {
        items[i] = v;
        return this;
      }
    }
    keys.push(Value.str(key));
    items.push(v);
    return this;
  }

  /** Appends to an array; returns `this` for chaining. */
  push(v: Value): Value {
    assert(this.kind == ValueKind.Array, "Value.push on a non-array");
    (<Array<Value>>this.items).push(v);
    return this;
  }
}

/** Streaming MessagePack writer into a growable buffer. */
export class Encoder {
  private buf: Uint8Array;
  private pos: i32 = 0;

  constructor(initialCapacity: i32 = 128) {
    this.buf = new Uint8Array(initialCapacity > 8 ? initialCapacity : 8);
  }

  private ensure(n: i32): void {
    const need = this.pos + n;
    if (need <= this.buf.length) return;
    let cap = this.buf.length << 1;
    while (cap < need) cap <<= 1;
    const next = new Uint8Array(cap);
    memory.copy(next.dataStart, this.buf.dataStart, <usize>this.pos);
    this.buf = next;
  }

  private u8(v: u32): void {
    this.ensure(1);
    store<u8>(this.buf.dataStart + <usize>this.pos, <u8>v);
    this.pos += 1;
  }

  private be16(v: u32): void {
    this.ensure(2);
    store<u16>(this.buf.dataStart + <usize>this.pos, bswap<u16>(<u16>v));
    this.pos += 2;
  }

  private be32(v: u32): void {
    this.ensure(4);
    store<u32>(this.buf.dataStart + <usize>this.pos, bswap<u32>(v));
    this.pos += 4;
  }

  private be64(v: u64): void {
    this.ensure(8);
    store<u64>(this.buf.dataStart + <usize>this.pos, bswap<u64>(v));
    this.pos += 8;
  }

  writeNil(): void { this.u8(0xc0); }

  writeBool(v: bool): void { this.u8(v ? 0xc3 : 0xc2); }

  /** Writes an integer in its smallest standard encoding. */
  writeInt(v: i64): void {
    if (v >= 0) {
      if (v < 128) this.u8(<u32>v);
      else if (v < 256) { this.u8(0xcc); this.u8(<u32>v); }
      else if (v < 65536) { this.u8(0xcd); this.be16(<u32>v); }
      else if (v < 4294967296) { this.u8(0xce); this.be32(<u32>v); }
      else { this.u8(0xcf); this.be64(<u64>v); }
    } else {
      if (v >= -32) this.u8(<u32>(<i32>v & 0xff));
      else if (v >= -128) { this.u8(0xd0); this.u8(<u32>(<i32>v & 0xff)); }
      else if (v >= -32768) { this.u8(0xd1); this.be16(<u32>(<i32>v & 0xffff)); }
      else if (v >= -2147483648) { this.u8(0xd2); this.be32(<u32>v); }
      else { this.u8(0xd3); this.be64(<u64>v); }
    }
  }

  /** Writes an unsigned integer in its smallest standard encoding. */
  writeUint(v: u64): void {
    if (v <= <u64>i64.MAX_VALUE) this.writeInt(<i64>v);
    else { this.u8(0xcf); this.be64(v); }
  }

  /**
   * Writes a float in the smallest encoding that holds it exactly: float32 when narrowing to
   * f32 and back gives the same value (0.5, 1.0, ±Infinity, -0.0), else float64. NaN is always
   * float64 (its payload survives). A MessagePack reader widens float32 to the same double.
   */
  writeFloat(v: f64): void {
    const narrow = <f32>v;
    // The conversion keeps the sign of zero; NaN != NaN keeps NaN on the float64 path.
    if (<f64>narrow == v) {
      this.u8(0xca);
      this.be32(reinterpret<u32>(narrow));
    } else {
      this.u8(0xcb);
      this.be64(reinterpret<u64>(v));
    }
  }

  /** Writes a float as float64 regardless of its value. */
  writeFloat64(v: f64): void {
    this.u8(0xcb);
    this.be64(reinterpret<u64>(v));
  }

  /** Writes `s` as a UTF-8 str; the header carries the UTF-8 byte length, not `s.length`. */
  writeString(s: string): void {
    const n = String.UTF8.byteLength(s);
    if (n < 32) this.u8(0xa0 | <u32>n);
    else if (n < 256) { this.u8(0xd9); this.u8(<u32>n); }
    else if (n < 65536) { this.u8(0xda); this.be16(<u32>n); }
    else { this.u8(0xdb); this.be32(<u32>n); }
    this.ensure(n);
    String.UTF8.encodeUnsafe(
      changetype<usize>(s), s.length, this.buf.dataStart + <usize>this.pos,
      false, String.UTF8.ErrorMode.REPLACE,
    );
    this.pos += n;
  }

  writeBin(data: Uint8Array): void {
    const n = data.length;
    if (n < 256) { this.u8(0xc4); this.u8(<u32>n); }
    else if (n < 65536) { this.u8(0xc5); this.be16(<u32>n); }
    else { this.u8(0xc6); this.be32(<u32>n); }
    this.ensure(n);
    memory.copy(this.buf.dataStart + <usize>this.pos, data.dataStart, <usize>n);
    this.pos += n;
  }

  /** Writes an ext value: fixext for 1/2/4/8/16-byte payloads, else the smallest ext 8/16/32. */
  writeExt(type: i8, data: Uint8Array): void {
    const n = data.length;
    if (n == 1) this.u8(0xd4);
    else if (n == 2) this.u8(0xd5);
    else if (n == 4) this.u8(0xd6);
    else if (n == 8) this.u8(0xd7);
    else if (n == 16) this.u8(0xd8);
    else if (n < 256) { this.u8(0xc7); this.u8(<u32>n); }
    else if (n < 65536) { this.u8(0xc8); this.be16(<u32>n); }
    else { this.u8(0xc9); this.be32(<u32>n); }
    this.u8(<u32>(<u8>type));
    this.ensure(n);
    memory.copy(this.buf.dataStart + <usize>this.pos, data.dataStart, <usize>n);
    this.pos += n;
  }

  /** Starts an array of `n` elements; write exactly `n` values after it. */
  writeArrayHeader(n: i32): void {
    if (n < 16) this.u8(0x90 | <u32>n);
    else if (n < 65536) { this.u8(0xdc); this.be16(<u32>n); }
    else { this.u8(0xdd); this.be32(<u32>n); }
  }

  /** Starts a map of `n` entries; write exactly `n` key/value pairs after it. */
  writeMapHeader(n: i32): void {
    if (n < 16) this.u8(0x80 | <u32>n);
    else if (n < 65536) { this.u8(0xde); this.be16(<u32>n); }
    else { this.u8(0xdf); this.be32(<u32>n); }
  }

  writeValue(v: Value): void {
    switch (v.kind) {
      case ValueKind.Nil: this.writeNil(); break;
      case ValueKind.Bool: this.writeBool(v.boolValue); break;
      case ValueKind.Int: {
        if (v.bigUnsigned) this.writeUint(<u64>v.intValue);
        else this.writeInt(v.intValue);
        break;
      }
      case ValueKind.Float: this.writeFloat(v.floatValue); break;
      case ValueKind.Str: this.writeString(v.strValue); break;
      case ValueKind.Bin: this.writeBin(<Uint8Array>v.binValue); break;
      case ValueKind.Ext: this.writeExt(v.extType, <Uint8Array>v.binValue); break;
      case ValueKind.Array: {
        const items = <Array<Value>>v.items;
        this.writeArrayHeader(items.length);
        for (let i = 0; i < items.length; i++) this.writeValue(items[i]);
        break;
      }
      case ValueKind.Map: {
        const keys = <Array<Value>>v.keys;
        const items = <Array<Value>>v.items;
        this.writeMapHeader(keys.length);
        for (let i = 0; i < keys.length; i++) {
          this.writeValue(keys[i]);
          this.writeValue(items[i]);
        }
        break;
      }
      default: unreachable();
    }
  }

  /** The bytes written so far (a copy sized exactly to the content). */
  finish(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

/** Encodes one value to standalone MessagePack bytes. */
export function encode(v: Value): Uint8Array {
  const e = new Encoder();
  e.writeValue(v);
  return e.finish();
}

/** Nesting deeper than this is refused rather than risking the Wasm stack. */
export const MAX_DEPTH: i32 = 64;

/**
 * MessagePack reader over a byte array. Never traps on malformed input: `decode` returns
 * null and leaves a readable reason (with byte offset) in `error`.
 */
export class Decoder {
  private buf: Uint8Array;
  private pos: i32 = 0;
  /** Why the last `decode` failed; empty on success. */
  error: string = "";

  constructor(buf: Uint8Array) {
    this.buf = buf;
  }

  /** Decodes exactly one value spanning the whole buffer; trailing bytes are an error. */
  decode(): Value | null {
    this.pos = 0;
    this.error = "";
    const v = this.readValue(0);
    if (v == null) return null;
    if (this.pos != this.buf.length) {
      this.fail("trailing bytes after value");
      return null;
    }
    return v;
  }

  private fail(msg: string): void {
    if (this.error.length == 0) {
      this.error = "invalid MessagePack at byte " + this.pos.toString() + ": " + msg;
    }
  }

  private need(n: i64): bool {
    if (<i64>this.pos + n > <i64>this.buf.length) {
      this.fail("unexpected end of input");
      return false;
    }
    return true;
  }

  private rd8(): u32 {
    const v = <u32>load<u8>(this.buf.dataStart + <usize>this.pos);
    this.pos += 1;
    return v;
  }

  private rd16(): u32 {
    const v = <u32>bswap<u16>(load<u16>(this.buf.dataStart + <usize>this.pos));
    this.pos += 2;
    return v;
  }

  private rd32(): u32 {
    const v = bswap<u32>(load<u32>(this.buf.dataStart + <usize>this.pos));
    this.pos += 4;
    return v;
  }

  private rd64(): u64 {
    const v = bswap<u64>(load<u64>(this.buf.dataStart + <usize>this.pos));
    this.pos += 8;
    return v;
  }

  /** Reads a big-endian length of `width` bytes (1, 2 or 4); -1 if truncated. */
  private readLen(width: i32): i64 {
    if (!this.need(width)) return -1;
    if (width == 1) return <i64>this.rd8();
    if (width == 2) return <i64>this.rd16();
    return <i64>this.rd32();
  }

  private readStr(n: i64): Value | null {
    if (n < 0 || !this.need(n)) return null;
    const s = String.UTF8.decodeUnsafe(this.buf.dataStart + <usize>this.pos, <usize>n);
    this.pos += <i32>n;
    return Value.str(s);
  }

  private readBin(n: i64): Value | null {
    if (n < 0 || !this.need(n)) return null;
    const v = Value.bin(this.buf.slice(this.pos, this.pos + <i32>n));
    this.pos += <i32>n;
    return v;
  }

  /** Reads an ext type byte and `n` payload bytes. */
  private readExt(n: i64): Value | null {
    if (n < 0 || !this.need(n + 1)) return null;
    const type = <i8>this.rd8();
    const v = Value.ext(type, this.buf.slice(this.pos, this.pos + <i32>n));
    this.pos += <i32>n;
    return v;
  }

  private readArray(n: i64, depth: i32): Value | null {
    if (n < 0) return null;
    // Every element takes at least one byte: checking first stops a forged header from
    // making us allocate billions of slots.
    if (!this.need(n)) return null;
    const v = Value.array();
    const items = <Array<Value>>v.items;
    for (let i: i64 = 0; i < n; i++) {
      const item = this.readValue(depth + 1);
      if (item == null) return null;
      items.push(item);
    }
    return v;
  }

  private readMap(n: i64, depth: i32): Value | null {
    if (n < 0) return null;
    if (!this.need(n * 2)) return null;
    const v = Value.map();
    const keys = <Array<Value>>v.keys;
    const items = <Array<Value>>v.items;
    for (let i: i64 = 0; i < n; i++) {
      const k = this.readValue(depth + 1);
      if (k == null) return null;
      const item = this.readValue(depth + 1);
      if (item == null) return null;
      keys.push(k);
      items.push(item);
    }
    return v;
  }

  private readValue(depth: i32): Value | null {
    if (depth > MAX_DEPTH) {
      this.fail("nesting deeper than " + MAX_DEPTH.toString());
      return null;
    }
    if (!this.need(1)) return null;
    const b = this.rd8();
    if (b <= 0x7f) return Value.int(<i64>b);
    if (b >= 0xe0) return Value.int(<i64>(<i8>b));
    if ((b & 0xf0) == 0x80) return this.readMap(<i64>(b & 0x0f), depth);
    if ((b & 0xf0) == 0x90) return this.readArray(<i64>(b & 0x0f), depth);
    if ((b & 0xe0) == 0xa0) return this.readStr(<i64>(b & 0x1f));
    switch (b) {
      case 0xc0: return Value.nil();
      case 0xc2: return Value.bool(false);
      case 0xc3: return Value.bool(true);
      case 0xc4: return this.readBin(this.readLen(1));
      case 0xc5: return this.readBin(this.readLen(2));
      case 0xc6: return this.readBin(this.readLen(4));
      case 0xc7: return this.readExt(this.readLen(1));
      case 0xc8: return this.readExt(this.readLen(2));
      case 0xc9: return this.readExt(this.readLen(4));
      case 0xca: {
        if (!this.need(4)) return null;
        return Value.float(<f64>reinterpret<f32>(this.rd32()));
      }
      case 0xcb: {
        if (!this.need(8)) return null;
        return Value.float(reinterpret<f64>(this.rd64()));
      }
      case 0xcc: { if (!this.need(1)) return null; return Value.int(<i64>this.rd8()); }
      case 0xcd: { if (!this.need(2)) return null; return Value.int(<i64>this.rd16()); }
      case 0xce: { if (!this.need(4)) return null; return Value.int(<i64>this.rd32()); }
      case 0xcf: {
        if (!this.need(8)) return null;
        // Beyond i64 range the value is flagged bigUnsigned, never wrapped negative or rounded.
        return Value.uint(this.rd64());
      }
      case 0xd0: { if (!this.need(1)) return null; return Value.int(<i64>(<i8>this.rd8())); }
      case 0xd1: { if (!this.need(2)) return null; return Value.int(<i64>(<i16>this.rd16())); }
      case 0xd2: { if (!this.need(4)) return null; return Value.int(<i64>(<i32>this.rd32())); }
      case 0xd3: { if (!this.need(8)) return null; return Value.int(<i64>this.rd64()); }
      case 0xd4: return this.readExt(1);
      case 0xd5: return this.readExt(2);
      case 0xd6: return this.readExt(4);
      case 0xd7: return this.readExt(8);
      case 0xd8: return this.readExt(16);
      case 0xd9: return this.readStr(this.readLen(1));
      case 0xda: return this.readStr(this.readLen(2));
      case 0xdb: return this.readStr(this.readLen(4));
      case 0xdc: return this.readArray(this.readLen(2), depth);
      case 0xdd: return this.readArray(this.readLen(4), depth);
      case 0xde: return this.readMap(this.readLen(2), depth);
      case 0xdf: return this.readMap(this.readLen(4), depth);
      default: {
        this.pos -= 1;
        this.fail("unsupported type byte 0x" + b.toString(16) + " (0xc1 is never used)");
        return null;
      }
    }
  }
}
