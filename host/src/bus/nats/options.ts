/**
 * Options of the NATS bus ({@link NatsBusOptions}), their defaults, and the names of the JetStream
 * objects it uses (streams, KV buckets). Shared by every file of this folder; imports no NATS
 * client code.
 */
import type { StreamName } from "../subjects.js";
import type { PublishOptions } from "../types.js";

/** Options of {@link createNatsBus}. */
export interface NatsBusOptions {
  /** NATS server URL(s), e.g. `nats://127.0.0.1:4222`. */
  servers: string | string[];
  /** The spool lives in `<stateDir>/bus/spool` (one process per state dir). */
  stateDir: string;
  /** Partitions per stream; part of the wire format: every process must agree (checked at start). Default 16. */
  partitions?: number;
  /** JetStream ack wait of the partition consumers, ms; default 10,000. */
  ackWaitMs?: number;
  /** Partition lease TTL, ms; must exceed `ackWaitMs`; default 2 × ackWaitMs + 5,000. */
  leaseTtlMs?: number;
  /** Stream duplicate window (publisher-side dedupe), ms; default 600,000. */
  duplicateWindowMs?: number;
  /** How long streams keep messages, ms; default 7 days. */
  maxAgeMs?: number;
  /** Per-stream byte cap (publishes fail with `backpressure` beyond it, never dropping old data); default unlimited. */
  maxBytes?: number;
  /** How long a JetStream publish waits for its ack before the message is spooled, ms; default 5,000. */
  publishTimeoutMs?: number;
  /** How long consumer-side dedupe remembers handled ids, ms; default 24 h. */
  dedupeTtlMs?: number;
  /** Wait between reconnect attempts, ms (the client adds jitter); default 1,000. */
  reconnectWaitMs?: number;
  /**
   * This process's member id (default random). A lease held under this id that this process
   * never held is taken over at once: pass an id only one live process uses (the gateway keeps
   * one per state directory, see instance.ts), so a restart after a crash resumes at once.
   */
  instanceId?: string;
  /**
   * How long `createNatsBus` waits for the first connection before resolving anyway (publishes
   * are spooled until NATS is reachable), ms; default 2,000. 0: do not wait.
   */
  connectWaitMs?: number;
  /**
   * The reorder window, ms (docs/bus.md, "Order through an outage"): after this process
   * reconnects, and after every delivery that came out of a spool, its consumers hold deliveries
   * this long and then release them sorted by intake time (`Exoclaw-Published-At`), so the
   * messages several processes spooled during an outage are handled in intake order per subject.
   * Default 5,000; 0 turns it off.
   */
  reorderWindowMs?: number;
  /**
   * Streams whose publishes are never spooled (the default of {@link PublishOptions.spool} for
   * them): when NATS is unreachable, a publish times out, or older messages still wait in the
   * spool, the publish fails with `BusError` `unavailable`. The gateway sets `["in"]` for
   * `[bus] outage = "refuse"`. Default none.
   */
  unspooledStreams?: readonly StreamName[];
  /** Connection name shown by the server. */
  name?: string;
  /** Warnings (connection loss, retries); default silent. */
  onWarning?: (message: string, error?: unknown) => void;
}

/** Default {@link NatsBusOptions.reorderWindowMs}. */
export const DEFAULT_REORDER_WINDOW_MS = 5_000;
/** Default {@link NatsBusOptions.publishTimeoutMs}, ms. */
export const DEFAULT_PUBLISH_TIMEOUT_MS = 5_000;
/** Default {@link NatsBusOptions.reconnectWaitMs}, ms. */
export const DEFAULT_RECONNECT_WAIT_MS = 1_000;

/** JetStream stream names. */
export const NATS_STREAMS: Readonly<Record<StreamName, string>> = { in: "EXOCLAW_IN", out: "EXOCLAW_OUT", events: "EXOCLAW_EVENTS" };
/** The dead-letter stream and its subject prefix. */
export const DLQ_STREAM = "EXOCLAW_DLQ";
export const DLQ_SUBJECT_PREFIX = "exoclaw.dlq";
/** KV buckets. */
export const LEASE_BUCKET = "exoclaw_bus_leases";
export const DEDUPE_BUCKET = "exoclaw_bus_dedupe";
