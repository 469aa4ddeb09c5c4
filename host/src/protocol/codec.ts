import { Packr, Unpackr } from "msgpackr";
import type { Encoding } from "./types.js";

// Standard MessagePack only: the msgpackr record extension would be garbage to other decoders.
const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Result of decoding one frame: the value, or why it is not decodable. */
export type DecodeResult = { ok: true; value: unknown } | { ok: false; reason: string };

/**
 * Decodes one WebSocket frame: text frames are UTF-8 JSON, binary frames are one MessagePack
 * value (trailing bytes are an error). Never throws.
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
    const value = unpackr.unpack(data);
    if (value !== null && typeof value === "object" && (value as object).constructor?.name === "C1Type") {
      return { ok: false, reason: "invalid MessagePack: reserved byte 0xc1" };
    }
    return { ok: true, value };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}

/**
 * Encodes a message for the wire: a JSON string (text frame) or MessagePack bytes (binary frame).
 * @throws TypeError if the value cannot be encoded (e.g. a BigInt in JSON, a cycle)
 */
export function encodeFrame(value: unknown, encoding: Encoding): string | Uint8Array {
  return encoding === "json" ? JSON.stringify(value) : packr.pack(value);
}

/** Encodes a value as standard MessagePack (no msgpackr extensions). */
export function packMsgpack(value: unknown): Uint8Array {
  return packr.pack(value);
}

/** Decodes one standard MessagePack value. @throws Error on malformed input */
export function unpackMsgpack(data: Uint8Array): unknown {
  return unpackr.unpack(data);
}
