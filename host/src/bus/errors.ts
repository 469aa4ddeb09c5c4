/** Machine-readable reason of a {@link BusError}. */
export type BusErrorCode =
  /** Bad subject, message id, header, consumer name or option. */
  | "invalid_argument"
  /** The encoded payload is larger than the bus allows. */
  | "too_large"
  /** The stream stayed full for the whole publish timeout (a consumer is too slow or missing). */
  | "backpressure"
  /** The disk spool could not be written. */
  | "spool"
  /** NATS cannot be reached for an operation that needs it (e.g. DLQ listing). */
  | "unavailable"
  /** A dead-letter id that does not exist. */
  | "not_found"
  /** The bus was closed. */
  | "closed"
  /** Anything else the back end reported. */
  | "internal";

/** A bus failure. */
export class BusError extends Error {
  constructor(
    readonly code: BusErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "BusError";
  }
}
