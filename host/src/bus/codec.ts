/**
 * Payload encoding: standard MessagePack (no msgpackr records/extensions), so any MessagePack
 * implementation in any language can read bus payloads.
 */
import { busMsgpack } from "../protocol/msgpack.mjs";

/** The header carrying the message id; JetStream dedupes on it within the stream's window. */
export const MSG_ID_HEADER = "Nats-Msg-Id";
/** Set on a message replayed from the dead-letter store: the original message id. */
export const REPLAY_OF_HEADER = "Exoclaw-Replay-Of";
/** Publication time of the first attempt (ms since the Unix epoch, decimal). */
export const PUBLISHED_AT_HEADER = "Exoclaw-Published-At";
/**
 * Set by the spool drain on a message that waited in a process's disk spool (value: when it was
 * forwarded, ms since the Unix epoch): a consumer that sees one knows spools are draining and holds
 * deliveries in its reorder window (docs/bus.md, "Order through an outage").
 */
export const SPOOLED_HEADER = "Exoclaw-Spooled";

/** Encodes a payload as standard MessagePack. */
export function encodePayload(value: unknown): Uint8Array {
  return busMsgpack.pack(value);
}

/** Decodes a standard MessagePack payload. @throws Error on malformed input */
export function decodePayload(bytes: Uint8Array): unknown {
  return busMsgpack.unpack(bytes);
}
