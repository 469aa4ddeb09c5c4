/**
 * The publish path of the NATS bus: a publish goes straight to JetStream when NATS is ready and
 * nothing older waits in the disk spool, and otherwise (or when JetStream does not answer in
 * time) into the spool, which is forwarded in order once NATS is back ({@link Publisher.kickDrain}).
 * Publishes to one subject run one at a time, so a message never overtakes the one before it.
 */
import { headers as natsHeaders } from "@nats-io/transport-node";
import { JetStreamApiError, type PubAck } from "@nats-io/jetstream";
import { encodePayload, PUBLISHED_AT_HEADER, SPOOLED_HEADER } from "../codec.js";
import { BusError } from "../errors.js";
import type { Spool, SpoolRecord } from "../spool.js";
import { wireSubject, type StreamName } from "../subjects.js";
import type { PublishAck, PublishOptions } from "../types.js";
import { checkPublish, checkSize } from "../validate.js";
import { errorMessage as errText, KeyedChain, sleep } from "../../util/index.js";
import type { Connection } from "./connection.js";
import { DEFAULT_PUBLISH_TIMEOUT_MS } from "./options.js";

/** Whether a publish error means "NATS is not there right now" (spool) rather than "this message is refused". */
function isTransient(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.status === 503 || err.status === 408;
  if (err instanceof BusError) return false;
  return true; // timeouts, no responders, closed/disconnected connection, ...
}

/** Options of {@link Publisher}. */
export interface PublisherOptions {
  connection: Connection;
  /** The open disk spool (`<stateDir>/bus/spool`). */
  spool: Spool;
  /** Partitions per stream (the wire subject's last token). */
  partitions: number;
  /** How long a JetStream publish waits for its ack before the message is spooled, ms; default 5,000. */
  publishTimeoutMs?: number;
  /** Streams whose publishes are never spooled unless a publish asks for it. */
  unspooledStreams?: readonly StreamName[];
  /** Whether the bus is closed (publishes then fail with `closed`, the drain stops). */
  isClosed: () => boolean;
  warn: (message: string, error?: unknown) => void;
}

/** See the module comment. */
export class Publisher {
  /** Publishes queued or running, per logical subject. */
  private readonly chains = new KeyedChain();
  private draining = false;

  constructor(private readonly o: PublisherOptions) {}

  /**
   * Publishes one message (see Bus.publish).
   * @throws BusError `closed`, `invalid_argument`, `too_large`, `backpressure` (stream full),
   *   `unavailable` (not spoolable and NATS not ready), `spool` (spool not writable), `internal`
   */
  async publish(subject: string, data: unknown, options: PublishOptions): Promise<PublishAck> {
    if (this.o.isClosed()) throw new BusError("closed", "the bus is closed");
    checkPublish(subject, options);
    const payload = encodePayload(data);
    checkSize(payload);
    const at = Date.now();
    const record: SpoolRecord = { subject, msgId: options.msgId, headers: { ...options.headers, [PUBLISHED_AT_HEADER]: String(at) }, payload, at };
    const spoolable = options.spool ?? !(this.o.unspooledStreams ?? []).some((s) => subject.startsWith(`exoclaw.${s}.`));
    // one publish per subject at a time: a message never overtakes the one before it
    return this.chains.run(subject, () => this.publishOne(record, spoolable));
  }

  /** Resolves once every publish started so far has settled (never rejects). */
  idle(): Promise<void> {
    return this.chains.idle();
  }

  private async publishOne(record: SpoolRecord, spoolable: boolean): Promise<PublishAck> {
    if (this.o.isClosed()) throw new BusError("closed", "the bus is closed");
    const { connection, spool } = this.o;
    // direct only when nothing older is waiting in the spool
    const direct = connection.ready && spool.pending === 0 && !spool.isDraining;
    if (!spoolable && !direct) {
      throw new BusError("unavailable", connection.ready ? "older messages are still being forwarded from the spool" : "NATS is not connected");
    }
    if (direct) {
      try {
        const ack = await this.jsPublish(record);
        return { msgId: record.msgId, storedIn: "stream", seq: ack.seq, duplicate: ack.duplicate };
      } catch (err) {
        if (!isTransient(err)) {
          const full = /maximum (bytes|messages)/i.test(errText(err));
          throw new BusError(full ? "backpressure" : "internal", `publish to ${record.subject} refused: ${errText(err)}`, { cause: err });
        }
        // not spooled: the publish may still land (same msg id, so a retry is a duplicate)
        if (!spoolable) throw new BusError("unavailable", `publish to ${record.subject} failed: ${errText(err)}`, { cause: err });
        this.o.warn("publish failed; spooling", err);
      }
    }
    try {
      await spool.append(record);
    } catch (err) {
      throw new BusError("spool", `cannot write the spool: ${errText(err)}`, { cause: err });
    }
    this.kickDrain();
    return { msgId: record.msgId, storedIn: "spool", duplicate: false };
  }

  /** Publishes one record to JetStream under its wire subject; `spooled` adds the `Exoclaw-Spooled` header. */
  private async jsPublish(record: SpoolRecord, spooled = false): Promise<PubAck> {
    const js = this.o.connection.infra?.js;
    if (!js || !this.o.connection.ready) throw new BusError("unavailable", "NATS is not connected");
    const h = natsHeaders();
    for (const [k, v] of Object.entries(record.headers)) h.set(k, v);
    if (spooled) h.set(SPOOLED_HEADER, String(Date.now()));
    return js.publish(wireSubject(record.subject, this.o.partitions), record.payload, {
      msgID: record.msgId,
      headers: h,
      timeout: this.o.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS,
    });
  }

  /** Starts forwarding the spool (in order, with backoff while NATS refuses) unless already running or empty. */
  kickDrain(): void {
    const { connection, spool } = this.o;
    if (this.draining || this.o.isClosed() || spool.pending === 0) return;
    this.draining = true;
    void (async () => {
      let delay = 200;
      try {
        while (!this.o.isClosed() && spool.pending > 0) {
          if (!connection.ready) {
            await Promise.race([connection.whenReady(), sleep(1_000)]);
            continue;
          }
          const ok = await spool.drain(async (r) => {
            await this.jsPublish(r, true);
          });
          if (!ok) {
            await sleep(delay);
            delay = Math.min(delay * 2, 5_000);
          } else delay = 200;
        }
      } catch (err) {
        this.o.warn("spool drain failed", err);
      } finally {
        this.draining = false;
        if (!this.o.isClosed() && spool.pending > 0) setTimeout(() => this.kickDrain(), 1_000).unref();
      }
    })();
  }
}
