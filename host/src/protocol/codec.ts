import { checkStandardMsgpack } from "./msgpack-check.js";
import { frameMsgpack } from "./msgpack.mjs";
import type { Encoding } from "./types.js";

// Standard MessagePack only (msgpack.mjs). Inbound frames are checked by checkStandardMsgpack
// first (no extension types reach msgpackr); int64/uint64 become numbers, as the same value in
// JSON would, never BigInts.
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Result of decoding one frame: the value, or why it is not decodable. */
export type DecodeResult = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * Decodes one WebSocket frame: text frames are UTF-8 JSON, binary frames are one MessagePack
 * value of standard types (extension types, reserved 0xc1 and trailing bytes are errors; see
 * `checkStandardMsgpack`). Never throws.
 * @param data the frame payload (a string for text frames the transport already decoded)
 */
export function decodeFrame(data: string | Uint8Array, encoding: Encoding): DecodeResult {
  try {
    if (encoding === "json") {
      const text = typeof data === "string" ? data : utf8.decode(data);
      return { ok: true, value: JSON.parse(text) };
    }
    if (typeof data === "string") return { ok: false, reason: "MessagePack frame must be binary" };
    if (data.byteLength === 0) return { ok: false, reason: "empty MessagePack frame" };
    const check = checkStandardMsgpack(data);
    if (!check.ok) return check;
    return { ok: true, value: frameMsgpack.unpack(data) };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * Encodes a message for the wire: a JSON string (text frame) or MessagePack bytes (binary frame).
 * @throws TypeError if the value cannot be encoded (e.g. a BigInt in JSON, a cycle)
 */
export function encodeFrame(value: unknown, encoding: Encoding): string | Uint8Array {
  return encoding === "json" ? JSON.stringify(value) : frameMsgpack.pack(value);
}

/** Encodes a value as standard MessagePack (no msgpackr extensions). */
export function packMsgpack(value: unknown): Uint8Array {
  return frameMsgpack.pack(value);
}

/**
 * Decodes one standard MessagePack value, as inbound frames are.
 * @throws Error on malformed input or an extension type, naming the byte offset
 */
export function unpackMsgpack(data: Uint8Array): unknown {
  const check = checkStandardMsgpack(data);
  if (!check.ok) throw new Error(check.reason);
  return frameMsgpack.unpack(data);
}
