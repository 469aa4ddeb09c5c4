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
 */
import { createHash, randomBytes } from "node:crypto";
import { join } from "node:path";
import { connect, headers as natsHeaders, millis, nanos, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
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
  type Consumer,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type PubAck,
} from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { decodePayload, encodePayload, MSG_ID_HEADER, PUBLISHED_AT_HEADER, REPLAY_OF_HEADER, SPOOLED_HEADER } from "../codec.js";
import { DEFAULT_BACKOFF_MS, DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_DELIVER, Dispatcher, MemoryDedupe, Window, type Counters, type Delivery } from "../dispatcher.js";
import { replayMsgId } from "../dlq-file.js";
import { BusError } from "../errors.js";
import { ReorderBuffer, ReorderClock } from "../reorder.js";
import { Spool, type SpoolRecord } from "../spool.js";
import { logicalSubject, partitionFilter, STREAM_NAMES, wireSubject, type StreamName } from "../subjects.js";
import type { Bus, BusMessage, BusStatus, ConsumeOptions, ConsumerStats, DeadLetter, DeadLetterStore, DedupeStore, PublishAck, PublishOptions, ReplayResult, Subscription } from "../types.js";
import { checkConsume, checkPublish, checkSize } from "../validate.js";
import { errorMessage as errText, sleep } from "../../util/index.js";

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

/** JetStream stream names. */
export const NATS_STREAMS: Readonly<Record<StreamName, string>> = { in: "EXOCLAW_IN", out: "EXOCLAW_OUT", events: "EXOCLAW_EVENTS" };
/** The dead-letter stream and its subject prefix. */
export const DLQ_STREAM = "EXOCLAW_DLQ";
export const DLQ_SUBJECT_PREFIX = "exoclaw.dlq";
/** KV buckets. */
export const LEASE_BUCKET = "exoclaw_bus_leases";
export const DEDUPE_BUCKET = "exoclaw_bus_dedupe";

const ACK = new TextEncoder().encode("+ACK");

/** Whether a publish error means "NATS is not there right now" (spool) rather than "this message is refused". */
function isTransient(err: unknown): boolean {
  if (err instanceof JetStreamApiError) return err.status === 503 || err.status === 408;
  if (err instanceof BusError) return false;
  return true; // timeouts, no responders, closed/disconnected connection, ...
}

function fnv(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix) so similar inputs spread
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/**
 * Owners of partitions `0..partitions-1` among `members`: rendezvous hashing with bounded loads,
 * so every member computes the same answer from the same member set and loads differ by at most
 * one (each member gets floor or ceil of partitions / members; the ceil quotas go to the members
 * first in id order). Plain rendezvous hashing can leave a member with nothing (12 partitions over
 * 3 members: about 2% of member sets), which is a gateway doing no inbound work.
 * @returns one member id per partition; empty with no members
 */
export function assignPartitions(partitions: number, members: readonly string[]): string[] {
  if (members.length === 0) return [];
  const sorted = [...members].sort();
  const base = Math.floor(partitions / sorted.length);
  const extra = partitions % sorted.length;
  const room = new Map(sorted.map((m, i) => [m, base + (i < extra ? 1 : 0)]));
  const owners: string[] = [];
  for (let k = 0; k < partitions; k++) {
    const ranked = sorted.map((m) => ({ m, score: fnv(`${m}/${k}`) })).sort((a, b) => b.score - a.score || (a.m < b.m ? -1 : 1));
    const owner = ranked.find((r) => room.get(r.m)! > 0)!.m;
    room.set(owner, room.get(owner)! - 1);
    owners.push(owner);
  }
  return owners;
}

function hdrsToRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}

/** Consumer-side dedupe in the KV bucket `exoclaw_bus_dedupe`, with an in-memory front. */
class KvDedupe implements DedupeStore {
  private readonly local = new MemoryDedupe();
  constructor(private readonly kv: () => KV | undefined) {}
  private static key(k: string): string {
    return createHash("sha256").update(k).digest("base64url");
  }
  hasLocal(k: string): boolean {
    return this.local.hasLocal(k);
  }
  async has(k: string): Promise<boolean> {
    if (this.local.hasLocal(k)) return true;
    const kv = this.kv();
    if (!kv) throw new BusError("unavailable", "NATS is not connected");
    const e = await kv.get(KvDedupe.key(k));
    const seen = !!e && e.operation === "PUT";
    if (seen) this.local.addSync(k);
    return seen;
  }
  async add(k: string): Promise<void> {
    const kv = this.kv();
    if (!kv) throw new BusError("unavailable", "NATS is not connected");
    await kv.put(KvDedupe.key(k), "");
    this.local.addSync(k);
  }
}

/** See the module comment. Create with {@link createNatsBus}. */
export class NatsBus implements Bus {
  readonly kind = "nats" as const;
  readonly instanceId: string;
  readonly partitions: number;
  readonly ackWaitMs: number;
  readonly leaseTtlMs: number;
  readonly deadLetters: NatsDeadLetters;
  readonly dedupe: KvDedupe;
  /** Until when this process's consumers hold deliveries (see reorder.ts). */
  readonly reorder: ReorderClock;
  nc: NatsConnection | undefined;
  js: JetStreamClient | undefined;
  jsm: JetStreamManager | undefined;
  leases: KV | undefined;
  private dedupeKv: KV | undefined;
  /** Connected and streams/buckets ensured. */
  ready = false;
  private closed = false;
  private lastError: string | undefined;
  private readonly chains = new Map<string, Promise<unknown>>();
  private readonly subs = new Set<NatsSubscription>();
  private draining = false;
  private connGen = 0;
  /** Ready at least once: a later ready is a reconnect after an outage. */
  private wasReady = false;
  private readyWaiters: Array<() => void> = [];
  private readonly connectLoopDone: Promise<void>;

  /** @internal use {@link createNatsBus} */
  constructor(
    private readonly opts: NatsBusOptions,
    private readonly spool: Spool,
  ) {
    this.instanceId = opts.instanceId ?? randomBytes(6).toString("hex");
    this.partitions = opts.partitions ?? 16;
    this.ackWaitMs = opts.ackWaitMs ?? 10_000;
    this.leaseTtlMs = opts.leaseTtlMs ?? 2 * this.ackWaitMs + 5_000;
    if (!Number.isInteger(this.partitions) || this.partitions < 1 || this.partitions > 1024) throw new BusError("invalid_argument", "partitions must be an integer in 1..1024");
    if (this.leaseTtlMs <= this.ackWaitMs) throw new BusError("invalid_argument", "leaseTtlMs must exceed ackWaitMs");
    this.deadLetters = new NatsDeadLetters(this);
    this.dedupe = new KvDedupe(() => (this.ready ? this.dedupeKv : undefined));
    const reorderWindowMs = opts.reorderWindowMs ?? DEFAULT_REORDER_WINDOW_MS;
    if (!Number.isInteger(reorderWindowMs) || reorderWindowMs < 0) throw new BusError("invalid_argument", "reorderWindowMs must be an integer >= 0");
    this.reorder = new ReorderClock(reorderWindowMs);
    this.connectLoopDone = this.connectLoop();
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
    if (this.ready || this.closed) return Promise.resolve();
    return new Promise((r) => this.readyWaiters.push(r));
  }

  private async connectLoop(): Promise<void> {
    let delay = 250;
    while (!this.closed) {
      let nc: NatsConnection;
      try {
        nc = await connect({
          servers: this.opts.servers,
          name: this.opts.name ?? `exoclaw-${this.instanceId}`,
          reconnect: true,
          maxReconnectAttempts: -1,
          reconnectTimeWait: this.opts.reconnectWaitMs ?? 1_000,
          reconnectJitter: 250,
          timeout: 2_000,
          pingInterval: 5_000,
          maxPingOut: 2,
          waitOnFirstConnect: false,
        });
      } catch (err) {
        this.warn("NATS unreachable; publishing to the spool", err);
        await sleep(delay);
        delay = Math.min(delay * 2, (this.opts.reconnectWaitMs ?? 1_000) * 5);
        continue;
      }
      delay = 250;
      if (this.closed) {
        await nc.close().catch(() => {});
        return;
      }
      this.nc = nc;
      void this.watchStatus(nc);
      void this.onConnected();
      const err = await nc.closed();
      this.ready = false;
      if (this.closed) return;
      this.warn("NATS connection closed; reconnecting", err);
    }
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    for await (const s of nc.status()) {
      if (s.type === "disconnect") {
        this.ready = false;
        this.warn("NATS disconnected; publishing to the spool");
      } else if (s.type === "reconnect") {
        void this.onConnected();
      }
    }
  }

  private async onConnected(): Promise<void> {
    const gen = ++this.connGen;
    let delay = 100;
    while (!this.closed && this.nc && !this.nc.isClosed() && gen === this.connGen) {
      try {
        await this.ensureInfra(this.nc);
        break;
      } catch (err) {
        this.warn("JetStream not ready", err);
        if (err instanceof BusError && err.code === "invalid_argument") return; // configuration mismatch: stays down
        await sleep(delay);
        delay = Math.min(delay * 2, 2_000);
      }
    }
    if (this.closed || gen !== this.connGen || !this.nc || this.nc.isClosed()) return;
    // Back after an outage: the other processes' spools (and ours) are about to drain, and a
    // message published live from now on may be younger than one still in a spool.
    if (this.wasReady) this.reorder.extend();
    this.wasReady = true;
    this.ready = true;
    for (const w of this.readyWaiters.splice(0)) w();
    this.kickDrain();
    for (const s of this.subs) s.onReady();
  }

  private async ensureInfra(nc: NatsConnection): Promise<void> {
    const jsm = await jetstreamManager(nc, { timeout: 5_000 });
    const description = (s: string) => `exoclaw bus ${s} (partitions=${this.partitions})`;
    for (const s of STREAM_NAMES) {
      const name = NATS_STREAMS[s];
      const config = {
        name,
        subjects: [`exoclaw.${s}.>`],
        storage: StorageType.File,
        retention: RetentionPolicy.Limits,
        discard: DiscardPolicy.New,
        max_age: nanos(this.opts.maxAgeMs ?? 7 * 24 * 3600 * 1000),
        max_bytes: this.opts.maxBytes ?? -1,
        duplicate_window: nanos(this.opts.duplicateWindowMs ?? 600_000),
        description: description(s),
      };
      let existing: { config: { description?: string } } | undefined;
      try {
        existing = await jsm.streams.info(name);
      } catch (err) {
        if (!(err instanceof JetStreamApiError) || err.code !== 10059) throw err;
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
        throw new BusError("invalid_argument", `stream ${name} was created with "${existing.config.description}", this process uses partitions=${this.partitions}; all processes must agree`);
      }
    }
    try {
      await jsm.streams.info(DLQ_STREAM);
    } catch (err) {
      if (!(err instanceof JetStreamApiError) || err.code !== 10059) throw err;
      await jsm.streams
        .add({ name: DLQ_STREAM, subjects: [`${DLQ_SUBJECT_PREFIX}.>`], storage: StorageType.File, retention: RetentionPolicy.Limits, discard: DiscardPolicy.New, description: "exoclaw dead letters" })
        .catch(async (e) => {
          await jsm.streams.info(DLQ_STREAM).catch(() => {
            throw e;
          });
        });
    }
    const js = jetstream(nc, { timeout: this.opts.publishTimeoutMs ?? 5_000 });
    const kvm = new Kvm(js);
    const bucket = async (name: string, ttl: number) => {
      try {
        return await kvm.create(name, { ttl, history: 1, storage: StorageType.File });
      } catch {
        return await kvm.open(name);
      }
    };
    this.leases = await bucket(LEASE_BUCKET, this.leaseTtlMs);
    this.dedupeKv = await bucket(DEDUPE_BUCKET, this.opts.dedupeTtlMs ?? 24 * 3600 * 1000);
    this.jsm = jsm;
    this.js = js;
  }

  async publish(subject: string, data: unknown, options: PublishOptions): Promise<PublishAck> {
    if (this.closed) throw new BusError("closed", "the bus is closed");
    checkPublish(subject, options);
    const payload = encodePayload(data);
    checkSize(payload);
    const at = Date.now();
    const record: SpoolRecord = { subject, msgId: options.msgId, headers: { ...options.headers, [PUBLISHED_AT_HEADER]: String(at) }, payload, at };
    // one publish per subject at a time: a message never overtakes the one before it
    const prev = this.chains.get(subject) ?? Promise.resolve();
    const spoolable = options.spool ?? !(this.opts.unspooledStreams ?? []).some((s) => subject.startsWith(`exoclaw.${s}.`));
    const mine = prev.catch(() => {}).then(() => this.publishOne(record, spoolable));
    this.chains.set(subject, mine);
    void mine.catch(() => {}).finally(() => {
      if (this.chains.get(subject) === mine) this.chains.delete(subject);
    });
    return mine;
  }

  private async publishOne(record: SpoolRecord, spoolable: boolean): Promise<PublishAck> {
    if (this.closed) throw new BusError("closed", "the bus is closed");
    // direct only when nothing older is waiting in the spool
    const direct = this.ready && this.spool.pending === 0 && !this.spool.isDraining;
    if (!spoolable && !direct) {
      throw new BusError("unavailable", this.ready ? "older messages are still being forwarded from the spool" : "NATS is not connected");
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
        this.warn("publish failed; spooling", err);
      }
    }
    try {
      await this.spool.append(record);
    } catch (err) {
      throw new BusError("spool", `cannot write the spool: ${errText(err)}`, { cause: err });
    }
    this.kickDrain();
    return { msgId: record.msgId, storedIn: "spool", duplicate: false };
  }

  /** @internal */
  async jsPublish(record: SpoolRecord, spooled = false): Promise<PubAck> {
    const js = this.js;
    if (!js || !this.ready) throw new BusError("unavailable", "NATS is not connected");
    const h = natsHeaders();
    for (const [k, v] of Object.entries(record.headers)) h.set(k, v);
    if (spooled) h.set(SPOOLED_HEADER, String(Date.now()));
    return js.publish(wireSubject(record.subject, this.partitions), record.payload, { msgID: record.msgId, headers: h, timeout: this.opts.publishTimeoutMs ?? 5_000 });
  }

  private kickDrain(): void {
    if (this.draining || this.closed || this.spool.pending === 0) return;
    this.draining = true;
    void (async () => {
      let delay = 200;
      try {
        while (!this.closed && this.spool.pending > 0) {
          if (!this.ready) {
            await Promise.race([this.whenReady(), sleep(1_000)]);
            continue;
          }
          const ok = await this.spool.drain(async (r) => {
            await this.jsPublish(r, true);
          });
          if (!ok) {
            await sleep(delay);
            delay = Math.min(delay * 2, 5_000);
          } else delay = 200;
        }
      } catch (err) {
        this.warn("spool drain failed", err);
      } finally {
        this.draining = false;
        if (!this.closed && this.spool.pending > 0) setTimeout(() => this.kickDrain(), 1_000).unref();
      }
    })();
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
    await Promise.allSettled([...this.chains.values()]);
    this.closed = true;
    for (const w of this.readyWaiters.splice(0)) w();
    const nc = this.nc;
    this.ready = false;
    if (nc && !nc.isClosed()) await nc.close().catch(() => {});
    await this.connectLoopDone;
    await this.spool.close();
  }
}

/** One owned partition of a subscription. */
class PartitionRunner {
  readonly dispatcher: Dispatcher<unknown>;
  private stopped = false;
  private abandoned = false;
  private readonly loop: Promise<void>;
  private stash: Delivery[] = [];
  /**
   * Set while deliveries this runner never received are still unacknowledged on the server: a
   * previous holder's (at start) or ones lost on the way (a connection dropped or a fetch stopped
   * while the server was sending). The server redelivers them only after the ack wait, and
   * meanwhile sends newer messages: those wait in the stash until `missing` redeliveries of
   * messages not already held (`known`) arrived, or until `deadline` (ms since the epoch), so
   * the handler still sees stream order per subject.
   */
  private guard: { missing: number; deadline: number; known: Set<number> } | undefined;
  /** Consumer delivery sequence of the last delivery received; a jump means deliveries were lost. */
  private lastDeliverySeq = 0;
  /** Deliveries held by the reorder window (reorder.ts), on their way to the dispatcher. */
  private readonly reorder: ReorderBuffer<Delivery>;

  constructor(
    private readonly sub: NatsSubscription,
    readonly k: number,
  ) {
    this.dispatcher = sub.newDispatcher();
    this.reorder = new ReorderBuffer(sub.bus.reorder, (sorted) => {
      for (const d of sorted) this.dispatcher.push(d);
    });
    this.loop = this.run();
  }

  private async consumer(): Promise<Consumer> {
    const js = this.sub.bus.js;
    if (!js) throw new BusError("unavailable", "NATS is not connected");
    return js.consumers.get(NATS_STREAMS[this.sub.stream], this.sub.consumerName(this.k));
  }

  private async run(): Promise<void> {
    const bus = this.sub.bus;
    let consumer: Consumer | undefined;
    let guarded = false;
    while (!this.stopped) {
      if (!bus.ready) {
        await Promise.race([bus.whenReady(), sleep(500)]);
        continue;
      }
      try {
        consumer ??= await this.consumer();
        if (!guarded) {
          // messages still pending on this consumer belong to a previous holder: take them first
          const info = await consumer.info(); // fresh, not the cached copy
          if (info.num_ack_pending > 0) this.expect(info.num_ack_pending);
          // deliveries after this point that do not reach this runner (a previous holder still
          // pulling, or lost on the way) show up as gaps in the delivery sequence
          this.lastDeliverySeq = info.delivered.consumer_seq;
          guarded = true;
        }
        if (this.guard && Date.now() > this.guard.deadline) this.flushStash();
        const window = this.dispatcher.window;
        const batch = Math.min(window.free, Math.max(1, Math.ceil(window.max / Math.max(1, this.sub.ownedCount()))), 64);
        if (batch <= 0 && !this.guard) {
          await this.dispatcher.room();
          continue;
        }
        const n = Math.max(1, batch);
        window.reserved += n;
        try {
          // idle heartbeats end the fetch when the server goes away mid-pull; the watchdog is the
          // last resort (a pull whose 408 never comes must not stall the partition)
          const iter = await consumer.fetch({ max_messages: n, expires: 1_000, idle_heartbeat: 500 });
          const watchdog = setTimeout(() => void iter.stop(), 4_000);
          try {
            for await (const m of iter) this.deliver(m);
          } finally {
            clearTimeout(watchdog);
          }
        } finally {
          window.reserved -= n;
          window.wake();
        }
      } catch (err) {
        if (this.stopped) break;
        bus.warn(`partition ${this.k} of ${this.sub.durable}: fetch failed`, err);
        consumer = undefined;
        await sleep(250);
      }
    }
  }

  private deliver(m: JsMsg): void {
    const h = hdrsToRecord(m.headers);
    const d: Delivery = {
      subject: logicalSubject(m.subject),
      stream: this.sub.stream,
      msgId: h[MSG_ID_HEADER] ?? `seq:${m.seq}`,
      payload: m.data,
      headers: h,
      seq: m.seq,
      deliveryCount: m.info.deliveryCount,
      publishedAt: Number(h[PUBLISHED_AT_HEADER]) || millis(m.info.timestampNanos),
      handle: m,
    };
    if (this.stopped) {
      // fetched after a stop was requested: handed back with the rest
      this.stash.push(d);
      return;
    }
    // The consumer numbers its deliveries 1, 2, 3, ... (redeliveries included) and this is the
    // only runner pulling from it: a gap is deliveries sent and never received (the connection
    // dropped, or a fetch was stopped, while they were on the way). Each is a message now pending
    // on the server that comes back only after the ack wait, behind newer ones like this one.
    const dseq = m.info.deliverySequence;
    // (A number at or below the last one means the consumer was re-created — the server lost its
    // state — and starts over from the first message of the stream, in order: nothing is missing.)
    if (dseq > this.lastDeliverySeq + 1) this.expect(dseq - this.lastDeliverySeq - 1);
    this.lastDeliverySeq = dseq;
    if (this.guard) {
      this.stash.push(d);
      // a redelivery of a message already held is not one of the missing ones
      if (m.info.redelivered && !this.guard.known.has(d.seq)) {
        this.guard.known.add(d.seq);
        this.guard.missing--;
      }
      if (this.guard.missing <= 0) this.flushStash();
      return;
    }
    this.toDispatcher(d);
  }

  /** Passes a delivery on in stream order, through the reorder window. */
  private toDispatcher(d: Delivery): void {
    // out of a spool: other processes' spools may be draining too (an outage just ended)
    if (d.headers[SPOOLED_HEADER] !== undefined) this.sub.bus.reorder.extend();
    if (!this.reorder.offer(d)) this.dispatcher.push(d);
  }

  /** Starts (or extends) the guard: `n` more unacknowledged messages are on their way back. */
  private expect(n: number): void {
    const deadline = Date.now() + 2 * this.sub.bus.ackWaitMs + 2_000;
    const g = (this.guard ??= { missing: 0, deadline, known: new Set() });
    g.missing += n;
    g.deadline = Math.max(g.deadline, deadline);
    for (const d of this.dispatcher.heldDeliveries()) g.known.add(d.seq);
    for (const d of this.stash) g.known.add(d.seq);
    for (const d of this.reorder.held) g.known.add(d.seq);
  }

  private flushStash(): void {
    this.guard = undefined;
    const all = this.stash.sort((a, b) => a.seq - b.seq);
    this.stash = [];
    for (const d of all) this.toDispatcher(d);
  }

  /** Extends the ack deadline of everything held. */
  heartbeat(): void {
    if (this.abandoned) return;
    for (const d of this.dispatcher.heldDeliveries()) (d.handle as JsMsg).working();
    for (const d of this.stash) (d.handle as JsMsg).working();
    for (const d of this.reorder.held) (d.handle as JsMsg).working();
  }

  /** Graceful hand-over: finish running handlers, nak the rest in stream order. */
  async release(): Promise<void> {
    this.stopped = true;
    // no new handler attempts from now; a fetch still in progress lands in the stash
    const held = this.reorder.take();
    const handedBack = await this.dispatcher.stop();
    await this.loop;
    const unsettled = [...handedBack, ...this.stash, ...held].sort((a, b) => a.seq - b.seq);
    this.stash = [];
    for (const d of unsettled) (d.handle as JsMsg).nak();
    await this.sub.bus.nc?.flush().catch(() => {});
  }

  /** Lease lost: stop at once, let the server redeliver (no nak: the new holder may already run). */
  abandon(): void {
    this.stopped = true;
    this.abandoned = true;
    this.reorder.take(); // redelivered to the next holder
    void this.loop.then(() => this.dispatcher.stop()).catch(() => {});
  }
}

/** A durable consumer over all partitions, holding leases on some of them. */
class NatsSubscription implements Subscription {
  readonly durable: string;
  readonly stream: StreamName;
  private readonly window: Window;
  private readonly counters: Counters = { handled: 0, failures: 0, deadLettered: 0, duplicatesSkipped: 0 };
  private readonly owned = new Map<number, { runner: PartitionRunner; rev: number; renewedAt: number; releasing?: Promise<void> }>();
  /** Partitions this process has held at some point (their leases under our id are not a previous process's). */
  private readonly everOwned = new Set<number>();
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private loop: Promise<void> | undefined;
  /** Ends the tick loop's current sleep. */
  private wakeTick: (() => void) | undefined;
  private consumersReady = false;
  private ticks = 0;
  /** Reconnected after an outage: no claiming alone before two ticks (see onReady). */
  private rejoining = false;
  private readonly tickMs: number;

  constructor(
    readonly bus: NatsBus,
    private readonly options: ConsumeOptions<unknown>,
  ) {
    this.durable = options.durable;
    this.stream = options.stream;
    this.window = new Window(options.maxAckPending ?? DEFAULT_MAX_ACK_PENDING);
    this.tickMs = Math.max(100, Math.min(bus.leaseTtlMs / 4, bus.ackWaitMs / 3));
  }

  consumerName(k: number): string {
    return `${this.durable}-p${k}`;
  }

  private leaseKey(k: number): string {
    return `${this.stream}.${this.durable}.p.${k}`;
  }

  private memberPrefix(): string {
    return `${this.stream}.${this.durable}.m`;
  }

  ownedPartitions(): number[] {
    return [...this.owned.keys()].sort((a, b) => a - b);
  }

  ownedCount(): number {
    return this.owned.size;
  }

  newDispatcher(): Dispatcher<unknown> {
    const o = this.options;
    return new Dispatcher({
      durable: this.durable,
      handler: o.handler,
      maxAckPending: this.window.max,
      maxDeliver: o.maxDeliver ?? DEFAULT_MAX_DELIVER,
      backoffMs: o.backoffMs ?? DEFAULT_BACKOFF_MS,
      dedupe: this.bus.dedupe,
      onError: o.onError as ((error: unknown, message: BusMessage<unknown>) => void) | undefined,
      window: this.window,
      counters: this.counters,
      hooks: {
        ack: async (d) => {
          const nc = this.bus.nc;
          const reply = (d.handle as { reply?: string }).reply;
          if (!nc || !this.bus.ready || !reply) throw new BusError("unavailable", "NATS is not connected");
          await nc.request(reply, ACK, { timeout: 2_000 });
        },
        deadLetter: async (d, info) => {
          await this.bus.deadLetters.add({
            subject: d.subject,
            stream: d.stream,
            msgId: d.msgId,
            data: safeDecode(d.payload),
            headers: d.headers,
            consumer: this.durable,
            attempts: info.attempts,
            error: info.error,
            failedAt: Date.now(),
          });
          (d.handle as JsMsg).term(info.error.slice(0, 200));
        },
      },
    });
  }

  stats(): ConsumerStats {
    return { ...this.counters, held: this.window.held };
  }

  /** Called when the bus is (re)connected. */
  onReady(): void {
    if (this.stopped) return;
    this.consumersReady = false;
    if (this.loop !== undefined) {
      // A reconnect: after an outage longer than the lease TTL every member key has expired, and
      // the first member back would see itself alone and claim every partition, taking sessions
      // whose turns are still running in the others. Count ticks again, so that partitions are
      // claimed only once the others had two ticks to announce themselves.
      this.ticks = 0;
      this.rejoining = true;
    }
    this.loop ??= this.tickLoop();
  }

  private async ensureConsumers(): Promise<void> {
    const jsm = this.bus.jsm!;
    const streamName = NATS_STREAMS[this.stream];
    const ackWait = nanos(this.bus.ackWaitMs);
    const maxAckPending = this.window.max;
    await Promise.all(
      Array.from({ length: this.bus.partitions }, async (_, k) => {
        const name = this.consumerName(k);
        const filter = partitionFilter(this.stream, k, this.options.channel);
        let info;
        try {
          info = await jsm.consumers.info(streamName, name);
        } catch (err) {
          if (!(err instanceof JetStreamApiError) || err.code !== 10014) throw err;
        }
        if (!info) {
          await jsm.consumers.add(streamName, {
            durable_name: name,
            filter_subject: filter,
            ack_policy: AckPolicy.Explicit,
            ack_wait: ackWait,
            max_deliver: -1,
            max_ack_pending: maxAckPending,
            deliver_policy: DeliverPolicy.All,
            replay_policy: ReplayPolicy.Instant,
          });
        } else if (info.config.filter_subject !== filter) {
          throw new BusError("invalid_argument", `consumer ${name} filters ${info.config.filter_subject}; a different channel filter needs a different durable name`);
        } else if (info.config.ack_wait !== ackWait || info.config.max_ack_pending !== maxAckPending) {
          await jsm.consumers.update(streamName, name, { ack_wait: ackWait, max_ack_pending: maxAckPending });
        }
      }),
    );
  }

  private async tickLoop(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.tick();
      } catch (err) {
        this.bus.warn(`consumer ${this.durable}: lease tick failed`, err);
      }
      if (!this.stopped) {
        // interruptible, so that stop() does not wait out a whole tick
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, this.tickMs);
          this.wakeTick = () => (clearTimeout(t), resolve());
        });
        this.wakeTick = undefined;
      }
    }
  }

  /**
   * Live members: the member keys the lease bucket holds (expired ones are gone; a member that
   * stopped left a delete marker). One stream-info request plus one get per member, each bounded
   * by the request timeout (a key-listing iterator could hang while disconnected).
   */
  private async members(): Promise<string[]> {
    const kv = this.bus.leases!;
    const prefix = `$KV.${LEASE_BUCKET}.${this.memberPrefix()}.`;
    const info = await this.bus.jsm!.streams.info(`KV_${LEASE_BUCKET}`, { subjects_filter: `${prefix}*` });
    const ids: string[] = [];
    for (const subject of Object.keys(info.state.subjects ?? {})) {
      const id = subject.slice(prefix.length);
      const e = await kv.get(`${this.memberPrefix()}.${id}`);
      if (e && e.operation === "PUT") ids.push(id);
    }
    return ids;
  }

  private async tick(): Promise<void> {
    const now = Date.now();
    // self-fence: a lease we could not renew in time may already be someone else's
    for (const [k, o] of this.owned) {
      if (!o.releasing && now - o.renewedAt > this.bus.leaseTtlMs - this.tickMs) {
        o.runner.abandon();
        this.owned.delete(k);
      }
    }
    if (!this.bus.ready) return;
    if (!this.consumersReady) {
      await this.ensureConsumers();
      this.consumersReady = true;
    }
    const kv = this.bus.leases!;
    const me = this.bus.instanceId;
    await kv.put(`${this.memberPrefix()}.${me}`, String(now));
    this.ticks++;
    const members = await this.members();
    if (!members.includes(me)) members.push(me);
    const owners = assignPartitions(this.bus.partitions, members);
    for (let k = 0; k < this.bus.partitions; k++) {
      if (this.stopped) return;
      const desired = owners[k];
      const o = this.owned.get(k);
      if (o) {
        try {
          o.rev = await kv.update(this.leaseKey(k), me, o.rev);
          o.renewedAt = Date.now();
        } catch (err) {
          this.bus.warn(`lease on partition ${k} of ${this.durable} lost`, err);
          o.runner.abandon();
          this.owned.delete(k);
          continue;
        }
        if (desired !== me && !o.releasing) this.releasePartition(k);
      } else if (desired === me && (this.ticks >= 2 || (members.length === 1 && !this.rejoining))) {
        try {
          const rev = await kv.create(this.leaseKey(k), me);
          this.everOwned.add(k);
          this.owned.set(k, { runner: new PartitionRunner(this, k), rev, renewedAt: Date.now() });
        } catch {
          // still held by someone (or just released and not yet visible): next tick — unless it
          // is held under our own id by a previous process (a restart after a crash), which is
          // dead: take it over now rather than after the lease TTL. Its unacked messages come
          // back after the ack wait, and the runner takes them first, in order.
          if (!this.everOwned.has(k)) {
            const e = await kv.get(this.leaseKey(k)).catch(() => null);
            if (e && e.operation === "PUT" && e.string() === me) {
              try {
                const rev = await kv.update(this.leaseKey(k), me, e.revision);
                this.everOwned.add(k);
                this.owned.set(k, { runner: new PartitionRunner(this, k), rev, renewedAt: Date.now() });
              } catch {
                // changed meanwhile: next tick
              }
            }
          }
        }
      }
    }
    for (const o of this.owned.values()) o.runner.heartbeat();
  }

  private releasePartition(k: number): Promise<void> {
    const o = this.owned.get(k);
    if (!o) return Promise.resolve();
    o.releasing ??= (async () => {
      await o.runner.release();
      // the tick loop keeps renewing meanwhile; now hand the lease over
      try {
        if (this.bus.ready) await this.bus.leases!.delete(this.leaseKey(k), { previousSeq: o.rev });
      } catch {
        // renewed in between (rev changed): delete unconditionally, we still hold it
        await this.bus.leases?.delete(this.leaseKey(k)).catch(() => {});
      }
      this.owned.delete(k);
    })();
    return o.releasing;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      // release partitions while the tick loop keeps renewing their leases
      await Promise.all([...this.owned.keys()].map((k) => this.releasePartition(k)));
      this.stopped = true;
      this.wakeTick?.();
      await this.loop;
      await Promise.all([...this.owned.keys()].map((k) => this.releasePartition(k)));
      if (this.bus.ready) await this.bus.leases?.delete(`${this.memberPrefix()}.${this.bus.instanceId}`).catch(() => {});
      this.bus.forget(this);
    })();
    return this.stopping;
  }
}

function safeDecode(payload: Uint8Array): unknown {
  try {
    return decodePayload(payload);
  } catch {
    return payload;
  }
}

/** Dead letters in the `EXOCLAW_DLQ` stream; ids are stream sequences. Needs NATS to be reachable. */
class NatsDeadLetters implements DeadLetterStore {
  constructor(private readonly bus: NatsBus) {}

  private jsm(): JetStreamManager {
    if (!this.bus.ready || !this.bus.jsm) throw new BusError("unavailable", "NATS is not connected; dead letters live in JetStream");
    return this.bus.jsm;
  }

  /** @internal */
  async add(entry: Omit<DeadLetter, "id">): Promise<void> {
    const js = this.bus.js;
    if (!js || !this.bus.ready) throw new BusError("unavailable", "NATS is not connected");
    await js.publish(`${DLQ_SUBJECT_PREFIX}.${entry.stream}.${entry.consumer}`, encodePayload(entry), { msgID: `dlq/${entry.consumer}/${entry.msgId}` });
  }

  private async get(seq: number): Promise<DeadLetter | undefined> {
    try {
      const m = await this.jsm().streams.getMessage(DLQ_STREAM, { seq });
      if (!m) return undefined;
      return { ...(decodePayload(m.data) as Omit<DeadLetter, "id">), id: String(seq) };
    } catch (err) {
      if (err instanceof BusError) throw err;
      return undefined; // deleted
    }
  }

  async list(options: { limit?: number; consumer?: string } = {}): Promise<DeadLetter[]> {
    const info = await this.jsm().streams.info(DLQ_STREAM);
    const out: DeadLetter[] = [];
    const limit = options.limit ?? Infinity;
    if (info.state.messages === 0) return out;
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < limit; seq++) {
      const e = await this.get(seq);
      if (e && (options.consumer === undefined || e.consumer === options.consumer)) out.push(e);
    }
    return out;
  }

  async count(): Promise<number> {
    return (await this.jsm().streams.info(DLQ_STREAM)).state.messages;
  }

  private async select(ids: readonly string[] | undefined): Promise<DeadLetter[]> {
    if (ids === undefined) return this.list();
    const out: DeadLetter[] = [];
    for (const id of ids) {
      const seq = Number(id);
      const e = Number.isInteger(seq) && seq > 0 ? await this.get(seq) : undefined;
      if (!e) throw new BusError("not_found", `no dead letter with id ${JSON.stringify(id)}`);
      out.push(e);
    }
    return out;
  }

  async replay(ids?: readonly string[]): Promise<ReplayResult[]> {
    const chosen = await this.select(ids);
    const results: ReplayResult[] = [];
    for (const e of chosen) {
      const msgId = replayMsgId(e.msgId, e.id);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(e.headers)) if (!/^nats-|^exoclaw-published-at$|^exoclaw-spooled$/i.test(k)) headers[k] = v;
      headers[REPLAY_OF_HEADER] = e.msgId;
      const ack = await this.bus.publish(e.subject, e.data, { msgId, headers });
      await this.jsm().streams.deleteMessage(DLQ_STREAM, Number(e.id), false);
      results.push({ id: e.id, msgId, ack });
    }
    return results;
  }

  async purge(ids?: readonly string[]): Promise<number> {
    if (ids === undefined) {
      const r = await this.jsm().streams.purge(DLQ_STREAM);
      return r.purged;
    }
    const chosen = await this.select(ids);
    for (const e of chosen) await this.jsm().streams.deleteMessage(DLQ_STREAM, Number(e.id), false);
    return chosen.length;
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
