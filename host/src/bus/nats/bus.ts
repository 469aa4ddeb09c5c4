/**
 * The NATS JetStream back end (client: the modular `@nats-io/*` v3 packages).
 *
 * - Streams `EXOCLAW_IN`, `EXOCLAW_OUT`, `EXOCLAW_EVENTS` (file storage, limits retention,
 *   discard new, duplicate window) store each logical subject under its *wire subject*: the
 *   logical subject plus a partition token, `exoclaw.in.<channel>.<account>.<peer>.<p>`, where
 *   `p = fnv1a(subject) mod partitions` (see subjects.ts).
 * - A durable consumer name `D` becomes one JetStream durable pull consumer per partition,
 *   `D-p<k>`, filtered to `exoclaw.<stream>.*...*.<k>`.
 * - Each partition is consumed by one process at a time: the holder of the lease
 *   `<stream>.<D>.p.<k>` in the KV bucket `exoclaw_bus_leases` (TTL = `leaseTtlMs`, renewed by
 *   compare-and-set every tick). Partitions are spread over the live members (keys
 *   `<stream>.<D>.m.<id>`) by rendezvous hashing; a process hands a partition over only after its
 *   running handlers finished and its unhandled messages were nak'ed in stream order.
 * - Within a partition the shared {@link Dispatcher} keeps one message per logical subject in
 *   flight, in stream order; held messages get `working()` every tick so they do not expire while
 *   queued or retrying.
 * - A process that dies stops renewing: its leases expire after `leaseTtlMs`, its messages after
 *   `ackWaitMs` (< lease TTL, so they are back in the redelivery queue before anyone can take the
 *   partition); the new holder first collects the `num_ack_pending` redeliveries and handles them
 *   in stream order before anything newer. The same holds for deliveries lost on the way (a
 *   connection drop or a stopped fetch): a gap in the consumer's delivery sequence holds newer
 *   messages back until the lost ones are redelivered.
 * - Publishes while NATS is unreachable go to the disk spool and are forwarded in order when it
 *   returns; while the spool is not empty every publish goes through it (order is kept).
 * - Handled message ids are recorded in the KV bucket `exoclaw_bus_dedupe` (shared by every
 *   process; checked on redeliveries) before the ack.
 * - Dead letters are published to the stream `EXOCLAW_DLQ` (`exoclaw.dlq.<stream>.<durable>`).
 *
 * This file is the facade ({@link NatsBus}, {@link createNatsBus}); the jobs live next to it:
 * options.ts (options, defaults, object names), connection.ts (connect, reconnect, ready),
 * infra.ts (streams, buckets, partition consumers), publisher.ts (publish and spool drain),
 * subscription.ts (membership and leases), assign.ts (who owns which partition),
 * partition-runner.ts (one partition's deliveries), dedupe.ts and dead-letters.ts.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { NatsConnection } from "@nats-io/transport-node";
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import { BusError } from "../errors.js";
import { ReorderClock } from "../reorder.js";
import { Spool } from "../spool.js";
import type { Bus, BusStatus, ConsumeOptions, PublishAck, PublishOptions, Subscription } from "../types.js";
import { checkConsume } from "../validate.js";
import { errorMessage as errText } from "../../util/index.js";
import { Connection } from "./connection.js";
import { NatsDeadLetters } from "./dead-letters.js";
import { KvDedupe } from "./dedupe.js";
import { DEFAULT_REORDER_WINDOW_MS, type NatsBusOptions } from "./options.js";
import { Publisher } from "./publisher.js";
import { NatsSubscription } from "./subscription.js";
import { NatsTurnOwners } from "./turn-owners.js";

export { assignPartitions } from "./assign.js";
export { DEDUPE_BUCKET, DEFAULT_REORDER_WINDOW_MS, DLQ_STREAM, DLQ_SUBJECT_PREFIX, LEASE_BUCKET, NATS_STREAMS, type NatsBusOptions } from "./options.js";

/** See the module comment. Create with {@link createNatsBus}. */
export class NatsBus implements Bus {
  readonly kind = "nats" as const;
  readonly instanceId: string;
  readonly partitions: number;
  readonly ackWaitMs: number;
  readonly leaseTtlMs: number;
  readonly deadLetters: NatsDeadLetters;
  readonly dedupe: KvDedupe;
  /**
   * When the bus last became ready (connected, or reconnected after an outage), ms since the epoch;
   * 0 before. Member keys expire during an outage longer than the lease TTL and come back with
   * each member's next tick, so "absent" means "gone" only a lease TTL after this.
   */
  readySince = 0;
  /** Which live process runs which bus message's turn (turn-owners.ts). */
  readonly turnOwners: NatsTurnOwners;
  /** Until when this process's consumers hold deliveries (see reorder.ts). */
  readonly reorder: ReorderClock;
  private readonly connection: Connection;
  private readonly publisher: Publisher;
  private closed = false;
  private lastError: string | undefined;
  private readonly subs = new Set<NatsSubscription>();
  private readonly readyListeners = new Set<() => void>();

  /** @internal use {@link createNatsBus} */
  constructor(
    private readonly opts: NatsBusOptions,
    private readonly spool: Spool,
  ) {
    this.instanceId = opts.instanceId ?? randomBytes(6).toString("hex");
    this.partitions = opts.partitions ?? 16;
    this.ackWaitMs = opts.ackWaitMs ?? 10_000;
    this.leaseTtlMs = opts.leaseTtlMs ?? 2 * this.ackWaitMs + 5_000;
    if (!Number.isInteger(this.partitions) || this.partitions < 1 || this.partitions > 1024)
      throw new BusError("invalid_argument", "partitions must be an integer in 1..1024");
    if (this.leaseTtlMs <= this.ackWaitMs) throw new BusError("invalid_argument", "leaseTtlMs must exceed ackWaitMs");
    const reorderWindowMs = opts.reorderWindowMs ?? DEFAULT_REORDER_WINDOW_MS;
    if (!Number.isInteger(reorderWindowMs) || reorderWindowMs < 0) throw new BusError("invalid_argument", "reorderWindowMs must be an integer >= 0");
    this.reorder = new ReorderClock(reorderWindowMs);
    const warn = (message: string, error?: unknown) => this.warn(message, error);
    this.connection = new Connection({
      servers: opts.servers,
      name: opts.name ?? `exoclaw-${this.instanceId}`,
      reconnectWaitMs: opts.reconnectWaitMs,
      infra: {
        partitions: this.partitions,
        leaseTtlMs: this.leaseTtlMs,
        maxAgeMs: opts.maxAgeMs,
        maxBytes: opts.maxBytes,
        duplicateWindowMs: opts.duplicateWindowMs,
        publishTimeoutMs: opts.publishTimeoutMs,
        dedupeTtlMs: opts.dedupeTtlMs,
      },
      onReady: (reconnect) => this.onReady(reconnect),
      warn,
    });
    this.publisher = new Publisher({
      connection: this.connection,
      spool,
      partitions: this.partitions,
      publishTimeoutMs: opts.publishTimeoutMs,
      unspooledStreams: opts.unspooledStreams,
      isClosed: () => this.closed,
      warn,
    });
    this.deadLetters = new NatsDeadLetters({ connection: this.connection, publish: (s, d, o) => this.publish(s, d, o) });
    this.dedupe = new KvDedupe(() => (this.ready ? this.connection.infra?.dedupe : undefined));
    this.turnOwners = new NatsTurnOwners(this);
  }

  /** Connected and streams/buckets ensured. */
  get ready(): boolean {
    return this.connection.ready;
  }

  /** @internal the current client connection */
  get nc(): NatsConnection | undefined {
    return this.connection.nc;
  }

  /** @internal valid while {@link ready} */
  get js(): JetStreamClient | undefined {
    return this.connection.infra?.js;
  }

  /** @internal valid while {@link ready} */
  get jsm(): JetStreamManager | undefined {
    return this.connection.infra?.jsm;
  }

  /** @internal the dedupe bucket (24 h TTL); undefined while not {@link ready} */
  get dedupeKv(): KV | undefined {
    return this.ready ? this.connection.infra?.dedupe : undefined;
  }

  /** @internal the lease bucket; valid while {@link ready} */
  get leases(): KV | undefined {
    return this.connection.infra?.leases;
  }

  /** @internal */
  warn(message: string, error?: unknown): void {
    this.lastError = error === undefined ? message : `${message}: ${errText(error)}`;
    try {
      this.opts.onWarning?.(message, error);
    } catch {
      // a logger must not break the bus
    }
  }

  /** Resolves when connected and ready (or the bus closes). */
  whenReady(): Promise<void> {
    return this.connection.whenReady();
  }

  private onReady(reconnect: boolean): void {
    this.readySince = Date.now();
    // Back after an outage: the other processes' spools (and ours) are about to drain, and a
    // message published live from now on may be younger than one still in a spool.
    if (reconnect) this.reorder.extend();
    this.publisher.kickDrain();
    for (const s of this.subs) s.onReady();
    for (const l of this.readyListeners) l();
  }

  /**
   * @internal Calls `listener` now when ready, and each time the bus becomes ready again (the
   * connection may be a new one: core NATS subscriptions are made again on it, control.ts).
   * @returns a function that removes the listener
   */
  onEachReady(listener: () => void): () => void {
    this.readyListeners.add(listener);
    if (this.ready) listener();
    return () => this.readyListeners.delete(listener);
  }

  publish(subject: string, data: unknown, options: PublishOptions): Promise<PublishAck> {
    return this.publisher.publish(subject, data, options);
  }

  async consume<T = unknown>(options: ConsumeOptions<T>): Promise<Subscription> {
    if (this.closed) throw new BusError("closed", "the bus is closed");
    checkConsume(options as ConsumeOptions<unknown>);
    const sub = new NatsSubscription(this, options as ConsumeOptions<unknown>);
    this.subs.add(sub);
    if (this.ready) sub.onReady();
    return sub;
  }

  /** @internal */
  forget(sub: NatsSubscription): void {
    this.subs.delete(sub);
  }

  status(): BusStatus {
    const partitions: Record<string, number[]> = {};
    for (const s of this.subs) partitions[`${s.stream}/${s.durable}`] = s.ownedPartitions();
    const st: BusStatus = { kind: "nats", connected: this.ready, spooled: this.spool.pending, partitions };
    if (this.lastError !== undefined) st.lastError = this.lastError;
    return st;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await Promise.all([...this.subs].map((s) => s.stop()));
    await this.publisher.idle();
    this.closed = true;
    await this.connection.close();
    await this.spool.close();
  }
}

/**
 * Creates the NATS bus. Resolves once connected, or after `connectWaitMs` when NATS is down:
 * publishes are then spooled and consumers start when the server is reachable.
 * @throws BusError `invalid_argument` for bad options; Error when the spool cannot be opened
 */
export async function createNatsBus(options: NatsBusOptions): Promise<NatsBus> {
  const spool = await Spool.open(join(options.stateDir, "bus", "spool"));
  const bus = new NatsBus(options, spool);
  const wait = options.connectWaitMs ?? 2_000;
  if (wait > 0) {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([bus.whenReady(), new Promise<void>((r) => (timer = setTimeout(r, wait)))]);
    clearTimeout(timer);
  }
  return bus;
}
