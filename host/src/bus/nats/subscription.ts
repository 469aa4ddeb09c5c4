/**
 * A durable consumer of the NATS bus over all partitions of a stream ({@link NatsSubscription}):
 * membership and leases. Every tick it renews its member key `<stream>.<durable>.m.<id>` in the
 * lease bucket, computes the owners of the partitions from the live members (assign.ts), renews
 * the leases `<stream>.<durable>.p.<k>` it holds (compare-and-set), claims the ones assigned to it
 * and hands over the others; each held partition is run by a PartitionRunner
 * (partition-runner.ts) with its own Dispatcher.
 */
import type { JsMsg } from "@nats-io/jetstream";
import { DEFAULT_BACKOFF_MS, DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_DELIVER, Dispatcher, Window, type Counters } from "../dispatcher.js";
import { BusError } from "../errors.js";
import type { StreamName } from "../subjects.js";
import type { BusMessage, ConsumeOptions, ConsumerStats, Subscription } from "../types.js";
import { assignPartitions } from "./assign.js";
import { safeDecode } from "./dead-letters.js";
import { ensurePartitionConsumers } from "./infra.js";
import { LEASE_BUCKET } from "./options.js";
import type { SubscriptionBus } from "./owners.js";
import { PartitionRunner } from "./partition-runner.js";

const ACK = new TextEncoder().encode("+ACK");

/** A durable consumer over all partitions, holding leases on some of them. */
export class NatsSubscription implements Subscription {
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
    readonly bus: SubscriptionBus,
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
      await ensurePartitionConsumers({
        jsm: this.bus.jsm!,
        stream: this.stream,
        partitions: this.bus.partitions,
        consumerName: (k) => this.consumerName(k),
        channel: this.options.channel,
        ackWaitMs: this.bus.ackWaitMs,
        maxAckPending: this.window.max,
      });
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
