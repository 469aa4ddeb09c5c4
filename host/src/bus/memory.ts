/**
 * The in-process bus: the default when no NATS server is configured. Same subjects, payload
 * encoding, ordering, dedupe, retry and dead-letter behaviour as the NATS back end, without a
 * server. Streams are bounded in-memory queues: a publish waits while its stream is full (a
 * consumer is behind) and fails with `backpressure` only after `publishTimeoutMs`.
 * Messages live as long as the process; dead letters are kept under the state directory.
 */
import { join } from "node:path";
import { decodePayload, encodePayload, MSG_ID_HEADER, PUBLISHED_AT_HEADER } from "./codec.js";
import { DEFAULT_BACKOFF_MS, DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_DELIVER, Dispatcher, MemoryDedupe, type Delivery } from "./dispatcher.js";
import { FileDeadLetterStore } from "./dlq-file.js";
import { BusError } from "./errors.js";
import { matchesFilter, STREAM_NAMES, type StreamName } from "./subjects.js";
import type { Bus, BusStatus, ConsumeOptions, DeadLetterStore, PublishAck, PublishOptions, Subscription } from "./types.js";
import { checkConsume, checkPublish, checkSize } from "./validate.js";

/** Options of {@link createMemoryBus}. */
export interface MemoryBusOptions {
  /** Dead letters go to `<stateDir>/bus/dead-letters.log`; without it they are kept in memory. */
  stateDir?: string;
  /** Messages a stream holds before publishes wait (per stream); default 10,000. */
  capacity?: number;
  /** How long a publish waits for room before failing with `backpressure`, ms; default 30,000. */
  publishTimeoutMs?: number;
  /** A re-publish of a msgId within this window is dropped as a duplicate, ms; default 120,000 (JetStream's default). */
  dedupeWindowMs?: number;
  /** Clock, ms since the Unix epoch; default `Date.now`. */
  now?: () => number;
}

interface Rec {
  seq: number;
  subject: string;
  msgId: string;
  payload: Uint8Array;
  headers: Record<string, string>;
  publishedAt: number;
}

interface ConsumerState {
  durable: string;
  channel: string | undefined;
  /** Next stream seq not yet looked at. */
  cursor: number;
  /** Delivered, not settled. */
  pending: Set<number>;
  /** Handed back (stop), to deliver again before anything new; ascending. */
  redeliver: number[];
  deliveries: Map<number, number>;
  dedupe: MemoryDedupe;
  active: MemorySubscription | undefined;
}

class MemStream {
  readonly records = new Map<number, Rec>();
  lastSeq = 0;
  readonly ids = new Map<string, { seq: number; at: number }>();
  readonly consumers = new Map<string, ConsumerState>();
  roomWaiters: Array<{ wake: () => void }> = [];
  dataWaiters: Array<() => void> = [];

  constructor(readonly name: StreamName) {}

  /** Lowest seq some consumer still needs. */
  floor(): number {
    if (this.consumers.size === 0) return 1; // nobody consumes yet: keep everything
    let min = Infinity;
    for (const c of this.consumers.values()) {
      min = Math.min(min, c.cursor);
      for (const s of c.pending) if (s < min) min = s;
      if (c.redeliver.length > 0) min = Math.min(min, c.redeliver[0]!);
    }
    return min;
  }

  trim(): void {
    const floor = this.floor();
    for (const seq of this.records.keys()) {
      if (seq >= floor) break;
      this.records.delete(seq);
    }
    while (this.roomWaiters.length > 0 && this.records.size + this.reserved < this.capacityRef.value) {
      this.reserved++;
      this.roomWaiters.shift()!.wake();
    }
  }

  /** Slots handed to woken publishers that have not appended yet. */
  reserved = 0;
  capacityRef = { value: 10_000 };

  notifyData(): void {
    for (const w of this.dataWaiters.splice(0)) w();
  }
}

class MemorySubscription implements Subscription {
  readonly dispatcher: Dispatcher<unknown>;
  private stopped = false;
  private stopping: Promise<void> | undefined;
  private readonly loopDone: Promise<void>;

  constructor(
    private readonly bus: MemoryBus,
    private readonly s: MemStream,
    private readonly c: ConsumerState,
    options: ConsumeOptions<unknown>,
  ) {
    this.dispatcher = new Dispatcher({
      durable: c.durable,
      handler: options.handler,
      maxAckPending: options.maxAckPending ?? DEFAULT_MAX_ACK_PENDING,
      maxDeliver: options.maxDeliver ?? DEFAULT_MAX_DELIVER,
      backoffMs: options.backoffMs ?? DEFAULT_BACKOFF_MS,
      dedupe: c.dedupe,
      onError: options.onError,
      hooks: {
        ack: async (d) => this.settled(d),
        deadLetter: async (d, info) => {
          await bus.dlq.add({
            subject: d.subject,
            stream: d.stream,
            msgId: d.msgId,
            data: decodeSafe(d.payload),
            headers: d.headers,
            consumer: c.durable,
            attempts: info.attempts,
            error: info.error,
            failedAt: bus.now(),
          });
          this.settled(d);
        },
      },
    });
    this.loopDone = this.loop();
  }

  get durable(): string {
    return this.c.durable;
  }
  get stream(): StreamName {
    return this.s.name;
  }

  stats() {
    return this.dispatcher.stats();
  }

  private settled(d: Delivery): void {
    this.c.pending.delete(d.seq);
    this.c.deliveries.delete(d.seq);
    this.s.trim();
  }

  private next(): Delivery | undefined {
    const { c, s } = this;
    for (;;) {
      let seq: number;
      if (c.redeliver.length > 0) seq = c.redeliver.shift()!;
      else if (c.cursor <= s.lastSeq) seq = c.cursor++;
      else return undefined;
      const rec = s.records.get(seq);
      if (!rec) continue;
      if (c.channel !== undefined && !matchesFilter(rec.subject, s.name, c.channel)) {
        s.trim();
        continue;
      }
      const count = (c.deliveries.get(seq) ?? 0) + 1;
      c.deliveries.set(seq, count);
      c.pending.add(seq);
      return {
        subject: rec.subject,
        stream: s.name,
        msgId: rec.msgId,
        payload: rec.payload,
        headers: rec.headers,
        seq,
        deliveryCount: count,
        publishedAt: rec.publishedAt,
      };
    }
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      await this.dispatcher.room();
      if (this.stopped) break;
      if (this.dispatcher.free === 0) continue;
      const d = this.next();
      if (d) {
        this.dispatcher.push(d);
        continue;
      }
      await new Promise<void>((r) => this.s.dataWaiters.push(r));
    }
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      this.stopped = true;
      this.s.notifyData();
      await this.loopDone;
      const unsettled = await this.dispatcher.stop();
      for (const d of unsettled) {
        this.c.pending.delete(d.seq);
        this.c.redeliver.push(d.seq);
      }
      this.c.redeliver.sort((a, b) => a - b);
      this.c.active = undefined;
      this.bus.forget(this);
    })();
    return this.stopping;
  }
}

function decodeSafe(payload: Uint8Array): unknown {
  try {
    return decodePayload(payload);
  } catch {
    return payload;
  }
}

/** See the module comment. Create with {@link createMemoryBus}. */
export class MemoryBus implements Bus {
  readonly kind = "memory" as const;
  readonly streams = new Map<StreamName, MemStream>();
  private readonly subs = new Set<MemorySubscription>();
  private closed = false;
  readonly now: () => number;
  private readonly capacity: number;
  private readonly publishTimeoutMs: number;
  private readonly dedupeWindowMs: number;

  /** @internal use {@link createMemoryBus} */
  constructor(
    options: MemoryBusOptions,
    readonly dlq: FileDeadLetterStore,
  ) {
    this.now = options.now ?? Date.now;
    this.capacity = options.capacity ?? 10_000;
    this.publishTimeoutMs = options.publishTimeoutMs ?? 30_000;
    this.dedupeWindowMs = options.dedupeWindowMs ?? 120_000;
    for (const name of STREAM_NAMES) {
      const s = new MemStream(name);
      s.capacityRef.value = this.capacity;
      this.streams.set(name, s);
    }
  }

  get deadLetters(): DeadLetterStore {
    return this.dlq;
  }

  async publish(subject: string, data: unknown, options: PublishOptions): Promise<PublishAck> {
    if (this.closed) throw new BusError("closed", "the bus is closed");
    const streamName = checkPublish(subject, options);
    const payload = encodePayload(data);
    checkSize(payload);
    const s = this.streams.get(streamName)!;
    // expire old dedupe entries (oldest first; keeps `ids` bounded by the window)
    const cutoff = this.now() - this.dedupeWindowMs;
    for (const [id, v] of s.ids) {
      if (v.at >= cutoff) break;
      s.ids.delete(id);
    }
    const dup = this.duplicate(s, options.msgId);
    if (dup) return dup;
    if (s.roomWaiters.length > 0 || s.records.size + s.reserved >= this.capacity) {
      await this.waitForRoom(s);
      s.reserved--;
      const again = this.duplicate(s, options.msgId);
      if (again) {
        s.trim(); // give the slot to the next waiter
        return again;
      }
    }
    const at = this.now();
    const seq = ++s.lastSeq;
    const headers: Record<string, string> = { ...options.headers, [MSG_ID_HEADER]: options.msgId, [PUBLISHED_AT_HEADER]: String(at) };
    s.records.set(seq, { seq, subject, msgId: options.msgId, payload, headers, publishedAt: at });
    s.ids.set(options.msgId, { seq, at });
    s.notifyData();
    return { msgId: options.msgId, storedIn: "stream", seq, duplicate: false };
  }

  private duplicate(s: MemStream, msgId: string): PublishAck | undefined {
    const prev = s.ids.get(msgId);
    if (!prev) return undefined;
    if (this.now() - prev.at > this.dedupeWindowMs) {
      s.ids.delete(msgId);
      return undefined;
    }
    return { msgId, storedIn: "stream", seq: prev.seq, duplicate: true };
  }

  private waitForRoom(s: MemStream): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        wake: () => {
          clearTimeout(timer);
          if (this.closed) {
            s.reserved--;
            reject(new BusError("closed", "the bus is closed"));
          } else resolve();
        },
      };
      const timer = setTimeout(() => {
        const i = s.roomWaiters.indexOf(waiter);
        if (i >= 0) s.roomWaiters.splice(i, 1);
        reject(
          new BusError("backpressure", `stream ${s.name} stayed full (${this.capacity} messages) for ${this.publishTimeoutMs} ms; is a consumer running?`),
        );
      }, this.publishTimeoutMs);
      s.roomWaiters.push(waiter);
    });
  }

  async consume<T = unknown>(options: ConsumeOptions<T>): Promise<Subscription> {
    if (this.closed) throw new BusError("closed", "the bus is closed");
    checkConsume(options as ConsumeOptions<unknown>);
    const s = this.streams.get(options.stream)!;
    let c = s.consumers.get(options.durable);
    if (!c) {
      const first = s.records.size > 0 ? s.records.keys().next().value! : s.lastSeq + 1;
      c = {
        durable: options.durable,
        channel: options.channel,
        cursor: first,
        pending: new Set(),
        redeliver: [],
        deliveries: new Map(),
        dedupe: new MemoryDedupe(),
        active: undefined,
      };
      s.consumers.set(options.durable, c);
    } else if (c.channel !== options.channel) {
      throw new BusError("invalid_argument", `durable ${options.durable} was created with another channel filter`);
    }
    if (c.active) throw new BusError("invalid_argument", `durable ${options.durable} is already being consumed in this process`);
    const sub = new MemorySubscription(this, s, c, options as ConsumeOptions<unknown>);
    c.active = sub;
    this.subs.add(sub);
    return sub;
  }

  /** @internal */
  forget(sub: MemorySubscription): void {
    this.subs.delete(sub);
  }

  status(): BusStatus {
    return { kind: "memory", connected: true, spooled: 0 };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.subs].map((s) => s.stop()));
    for (const s of this.streams.values()) {
      for (const w of s.roomWaiters.splice(0)) w.wake();
    }
    await this.dlq.close();
  }
}

/** Creates the in-process bus (see {@link MemoryBusOptions}). */
export async function createMemoryBus(options: MemoryBusOptions = {}): Promise<MemoryBus> {
  let bus: MemoryBus | undefined;
  const dlq = await FileDeadLetterStore.open(
    options.stateDir === undefined ? undefined : join(options.stateDir, "bus", "dead-letters.log"),
    (subject, data, opts) => bus!.publish(subject, data, opts),
  );
  bus = new MemoryBus(options, dlq);
  return bus;
}
