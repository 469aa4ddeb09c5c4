/**
 * Sets up the JetStream objects the bus needs, idempotently (every process does it on every
 * (re)connection, and several may race): the three bus streams and the dead-letter stream, the
 * lease and dedupe KV buckets ({@link ensureInfra}), and one durable pull consumer per partition
 * of a subscription ({@link ensurePartitionConsumers}). Layout: docs/bus.md, "JetStream layout".
 */
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiError,
  jetstream,
  jetstreamManager,
  ReplayPolicy,
  RetentionPolicy,
  StorageType,
  type JetStreamClient,
  type JetStreamManager,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { BusError } from "../errors.js";
import { partitionFilter, STREAM_NAMES, type StreamName } from "../subjects.js";
import { DEDUPE_BUCKET, DEFAULT_PUBLISH_TIMEOUT_MS, DLQ_STREAM, DLQ_SUBJECT_PREFIX, LEASE_BUCKET, NATS_STREAMS, type NatsBusOptions } from "./options.js";

/** JetStream error code: stream not found. */
const STREAM_NOT_FOUND = 10059;
/** JetStream error code: consumer not found. */
const CONSUMER_NOT_FOUND = 10014;

/** The clients and buckets of one connection, once {@link ensureInfra} set them up. */
export interface Infra {
  jsm: JetStreamManager;
  js: JetStreamClient;
  /** KV `exoclaw_bus_leases`: partition leases and member heartbeats. */
  leases: KV;
  /** KV `exoclaw_bus_dedupe`: handled message ids. */
  dedupe: KV;
}

/** Options of {@link ensureInfra}: the connection plus the stream and bucket settings. */
export interface InfraOptions extends Pick<NatsBusOptions, "maxAgeMs" | "maxBytes" | "duplicateWindowMs" | "publishTimeoutMs" | "dedupeTtlMs"> {
  nc: NatsConnection;
  /** Partitions per stream; written into each stream's description and checked against it. */
  partitions: number;
  /** TTL of the lease bucket, ms. */
  leaseTtlMs: number;
}

/**
 * Creates (or checks) the streams `EXOCLAW_IN`/`OUT`/`EVENTS` and `EXOCLAW_DLQ` and the KV
 * buckets, and returns the clients.
 * @throws BusError `invalid_argument` when a stream was created with another partition count
 *   (a configuration mismatch: the caller stays down); JetStream errors otherwise (retry)
 */
export async function ensureInfra(o: InfraOptions): Promise<Infra> {
  const jsm = await jetstreamManager(o.nc, { timeout: 5_000 });
  const description = (s: string) => `exoclaw bus ${s} (partitions=${o.partitions})`;
  for (const s of STREAM_NAMES) {
    const name = NATS_STREAMS[s];
    const config = {
      name,
      subjects: [`exoclaw.${s}.>`],
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      discard: DiscardPolicy.New,
      max_age: nanos(o.maxAgeMs ?? 7 * 24 * 3600 * 1000),
      max_bytes: o.maxBytes ?? -1,
      duplicate_window: nanos(o.duplicateWindowMs ?? 600_000),
      description: description(s),
    };
    let existing: { config: { description?: string } } | undefined;
    try {
      existing = await jsm.streams.info(name);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NOT_FOUND) throw err;
    }
    if (!existing) {
      try {
        await jsm.streams.add(config);
      } catch (err) {
        // another process created it meanwhile
        existing = await jsm.streams.info(name).catch(() => {
          throw err;
        });
      }
    }
    if (existing && existing.config.description !== description(s)) {
      throw new BusError(
        "invalid_argument",
        `stream ${name} was created with "${existing.config.description}", this process uses partitions=${o.partitions}; all processes must agree`,
      );
    }
  }
  try {
    await jsm.streams.info(DLQ_STREAM);
  } catch (err) {
    if (!(err instanceof JetStreamApiError) || err.code !== STREAM_NOT_FOUND) throw err;
    await jsm.streams
      .add({
        name: DLQ_STREAM,
        subjects: [`${DLQ_SUBJECT_PREFIX}.>`],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.New,
        description: "exoclaw dead letters",
      })
      .catch(async (e) => {
        await jsm.streams.info(DLQ_STREAM).catch(() => {
          throw e;
        });
      });
  }
  const js = jetstream(o.nc, { timeout: o.publishTimeoutMs ?? DEFAULT_PUBLISH_TIMEOUT_MS });
  const kvm = new Kvm(js);
  const bucket = async (name: string, ttl: number) => {
    try {
      return await kvm.create(name, { ttl, history: 1, storage: StorageType.File });
    } catch {
      return await kvm.open(name);
    }
  };
  const leases = await bucket(LEASE_BUCKET, o.leaseTtlMs);
  const dedupe = await bucket(DEDUPE_BUCKET, o.dedupeTtlMs ?? 24 * 3600 * 1000);
  return { jsm, js, leases, dedupe };
}

/** Options of {@link ensurePartitionConsumers}. */
export interface PartitionConsumersOptions {
  jsm: JetStreamManager;
  stream: StreamName;
  /** Partitions per stream: one consumer each. */
  partitions: number;
  /** JetStream consumer name of partition `k`, `<durable>-p<k>`. */
  consumerName: (k: number) => string;
  /** Only this channel's subjects (ConsumeOptions.channel); all channels when undefined. */
  channel: string | undefined;
  /** Ack wait, ms. */
  ackWaitMs: number;
  /** The consumer's window (`max_ack_pending`). */
  maxAckPending: number;
}

/**
 * Creates the durable pull consumers `<durable>-p<k>` of one subscription, or updates their ack
 * wait and window when those changed.
 * @throws BusError `invalid_argument` when a consumer of that name filters other subjects (a
 *   different channel filter needs a different durable name); JetStream errors otherwise
 */
export async function ensurePartitionConsumers(o: PartitionConsumersOptions): Promise<void> {
  const streamName = NATS_STREAMS[o.stream];
  const ackWait = nanos(o.ackWaitMs);
  await Promise.all(
    Array.from({ length: o.partitions }, async (_, k) => {
      const name = o.consumerName(k);
      const filter = partitionFilter(o.stream, k, o.channel);
      let info;
      try {
        info = await o.jsm.consumers.info(streamName, name);
      } catch (err) {
        if (!(err instanceof JetStreamApiError) || err.code !== CONSUMER_NOT_FOUND) throw err;
      }
      if (!info) {
        await o.jsm.consumers.add(streamName, {
          durable_name: name,
          filter_subject: filter,
          ack_policy: AckPolicy.Explicit,
          ack_wait: ackWait,
          max_deliver: -1,
          max_ack_pending: o.maxAckPending,
          deliver_policy: DeliverPolicy.All,
          replay_policy: ReplayPolicy.Instant,
        });
      } else if (info.config.filter_subject !== filter) {
        throw new BusError(
          "invalid_argument",
          `consumer ${name} filters ${info.config.filter_subject}; a different channel filter needs a different durable name`,
        );
      } else if (info.config.ack_wait !== ackWait || info.config.max_ack_pending !== o.maxAckPending) {
        await o.jsm.consumers.update(streamName, name, { ack_wait: ackWait, max_ack_pending: o.maxAckPending });
      }
    }),
  );
}
