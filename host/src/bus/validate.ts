/** Argument checks shared by both back ends. */
import { BusError } from "./errors.js";
import { parseSubject, SubjectError, type StreamName } from "./subjects.js";
import type { ConsumeOptions, PublishOptions } from "./types.js";

/** Largest encoded payload, bytes (NATS's default max_payload is 1 MiB; headers need room). */
export const MAX_PAYLOAD_BYTES = 1024 * 1024 - 8 * 1024;

const DURABLE = /^[A-Za-z0-9_-]{1,64}$/;
const HEADER_NAME = /^[!-9;-~]+$/; // printable ASCII without ':'
const HEADER_VALUE = /^[\t\x20-\x7e]*$/;

/**
 * Checks a publish call and returns the subject's stream.
 * @throws BusError `invalid_argument`
 */
export function checkPublish(subject: string, options: PublishOptions): StreamName {
  let stream: StreamName;
  try {
    stream = parseSubject(subject).stream;
  } catch (err) {
    throw new BusError("invalid_argument", err instanceof SubjectError ? err.message : `bad subject ${JSON.stringify(subject)}`);
  }
  const id = options?.msgId;
  if (typeof id !== "string" || id.length === 0 || id.length > 256 || !HEADER_VALUE.test(id) || id.trim() !== id) {
    throw new BusError("invalid_argument", `msgId must be 1..256 printable ASCII characters without surrounding spaces, got ${JSON.stringify(id)}`);
  }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (!HEADER_NAME.test(name) || /^nats-/i.test(name)) throw new BusError("invalid_argument", `bad or reserved header name ${JSON.stringify(name)}`);
    if (typeof value !== "string" || !HEADER_VALUE.test(value)) throw new BusError("invalid_argument", `bad value for header ${name}`);
  }
  return stream;
}

/** @throws BusError `too_large` */
export function checkSize(bytes: Uint8Array): void {
  if (bytes.length > MAX_PAYLOAD_BYTES) throw new BusError("too_large", `payload is ${bytes.length} bytes; the bus allows ${MAX_PAYLOAD_BYTES}`);
}

/** @throws BusError `invalid_argument` */
export function checkConsume(options: ConsumeOptions<unknown>): void {
  if (!options || typeof options.handler !== "function") throw new BusError("invalid_argument", "consume needs a handler");
  if (options.stream !== "in" && options.stream !== "out" && options.stream !== "events") {
    throw new BusError("invalid_argument", `unknown stream ${JSON.stringify(options.stream)}`);
  }
  if (typeof options.durable !== "string" || !DURABLE.test(options.durable)) {
    throw new BusError("invalid_argument", `durable must match ${DURABLE}, got ${JSON.stringify(options.durable)}`);
  }
  if (options.channel !== undefined && options.stream === "events")
    throw new BusError("invalid_argument", "a channel filter applies to the in and out streams only");
  for (const [name, v, min] of [
    ["maxAckPending", options.maxAckPending, 1],
    ["maxDeliver", options.maxDeliver, 1],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < min)) throw new BusError("invalid_argument", `${name} must be an integer >= ${min}`);
  }
  if (options.backoffMs !== undefined && (options.backoffMs.length === 0 || options.backoffMs.some((n) => !(n >= 0)))) {
    throw new BusError("invalid_argument", "backoffMs must be a non-empty list of delays >= 0");
  }
}
