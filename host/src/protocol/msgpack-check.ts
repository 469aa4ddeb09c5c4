/**
 * A structural check of one MessagePack value that admits only the standard types of the
 * MessagePack spec (https://github.com/msgpack/msgpack/blob/master/spec.md): nil, bool, int,
 * float, str, bin, array, map. Extension types (ext 8/16/32, fixext 1-16, including the
 * timestamp extension -1) are refused: msgpackr would turn them into BigInts, Errors, RegExps,
 * Sets, typed arrays, Dates or structured-clone references, which protocol v1 excludes and some
 * of which are costly to build (a 1 MiB BigInt). Reserved byte 0xc1, truncation and trailing
 * bytes are refused too.
 *
 * The walk is iterative (a count of values still expected, not recursion), reads every header
 * and skips str/bin payloads by their length, so bytes inside strings are never mistaken for
 * headers; it costs O(bytes) and no allocation.
 */

/** Result of {@link checkStandardMsgpack}: fine, or what is wrong and at which byte offset. */
export type MsgpackCheck = { ok: true } | { ok: false; reason: string };

const hex = (b: number) => `0x${b.toString(16).padStart(2, "0")}`;

/**
 * Checks that `data` is exactly one MessagePack value made of standard types only.
 * @returns `{ok: false, reason}` naming the offending byte and its offset, e.g.
 *   `MessagePack extension type -1 (header 0xd6) at byte 12 is not allowed: protocol v1 uses standard types only`
 */
export function checkStandardMsgpack(data: Uint8Array): MsgpackCheck {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const end = data.byteLength;
  let pos = 0;
  // Values still to read. Each needs at least one byte, so more than the bytes left is truncation
  // (this also bounds the counter against array32/map32 headers that claim 4 billion entries).
  let pending = 1;
  const fail = (reason: string): MsgpackCheck => ({ ok: false, reason });
  const truncated = () => fail(`truncated MessagePack: the value needs more than the ${end} bytes of the frame`);

  while (pending > 0) {
    if (pending > end - pos) return truncated();
    pending--;
    const at = pos;
    const b = data[pos++]!;
    /** Skips `n` payload bytes. */
    let skip = 0;
    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // positive/negative fixint, nil, false, true: the header is the value
    } else if (b <= 0x8f) pending += 2 * (b & 0x0f);
    else if (b <= 0x9f) pending += b & 0x0f;
    else if (b <= 0xbf) skip = b & 0x1f;
    else {
      const width = LENGTH_WIDTH[b];
      if (b === 0xc1) return fail(`invalid MessagePack: reserved byte 0xc1 at byte ${at}`);
      if ((b >= 0xc7 && b <= 0xc9) || (b >= 0xd4 && b <= 0xd8)) {
        const typeAt = at + 1 + (width ?? 0);
        if (typeAt >= end) return truncated();
        return fail(`MessagePack extension type ${view.getInt8(typeAt)} (header ${hex(b)}) at byte ${at} is not allowed: protocol v1 uses standard types only`);
      }
      if (width !== undefined) {
        // str/bin/array/map with an explicit length field
        if (pos + width > end) return truncated();
        const n = width === 1 ? data[pos]! : width === 2 ? view.getUint16(pos) : view.getUint32(pos);
        pos += width;
        if (b >= 0xdc && b <= 0xdd) pending += n;
        else if (b >= 0xde) pending += 2 * n;
        else skip = n;
      } else {
        skip = FIXED_SIZE[b]!;
      }
    }
    if (skip > end - pos) return truncated();
    pos += skip;
  }
  if (pos !== end) return fail(`invalid MessagePack: ${end - pos} bytes after the end of the value (a frame holds exactly one value)`);
  return { ok: true };
}

/** Width of the length field after the header byte: bin, ext, str, array, map. */
const LENGTH_WIDTH: Record<number, 1 | 2 | 4> = {
  0xc4: 1,
  0xc5: 2,
  0xc6: 4, // bin 8/16/32
  0xc7: 1,
  0xc8: 2,
  0xc9: 4, // ext 8/16/32
  0xd9: 1,
  0xda: 2,
  0xdb: 4, // str 8/16/32
  0xdc: 2,
  0xdd: 4, // array 16/32
  0xde: 2,
  0xdf: 4, // map 16/32
};

/** Payload bytes after the header of fixed-size numbers. */
const FIXED_SIZE: Record<number, number> = {
  0xca: 4,
  0xcb: 8, // float 32/64
  0xcc: 1,
  0xcd: 2,
  0xce: 4,
  0xcf: 8, // uint 8..64
  0xd0: 1,
  0xd1: 2,
  0xd2: 4,
  0xd3: 8, // int 8..64
};
