/**
 * The consumer side shared by both back ends: per-subject lanes (one message of a subject at a
 * time, in delivery order), a bounded window of held messages, consumer-side dedupe, retry in
 * place with backoff, and dead-lettering after `maxDeliver` attempts.
 *
 * A back end feeds deliveries in stream order with {@link Dispatcher.push} (after waiting for
 * {@link Dispatcher.room}) and supplies the settle hooks.
 */
import { decodePayload } from "./codec.js";
import type { BusMessage, ConsumerStats, DedupeStore, Handler } from "./types.js";
import type { StreamName } from "./subjects.js";

/** A delivered message, as a back end hands it over. */
export interface Delivery {
  subject: string;
  stream: StreamName;
  msgId: string;
  payload: Uint8Array;
  headers: Record<string, string>;
  seq: number;
  deliveryCount: number;
  publishedAt: number;
  /** Back-end handle (the JetStream message, or nothing). */
  handle?: unknown;
}

/** How a back end settles deliveries. Hooks may throw; the dispatcher retries acks. */
export interface SettleHooks {
  /** The handler succeeded (already recorded in the dedupe store). */
  ack(d: Delivery): Promise<void>;
  /** Store a dead letter, then remove the message from the stream's pending set. */
  deadLetter(d: Delivery, info: { error: string; attempts: number }): Promise<void>;
}

/** Dispatcher settings (defaults applied by the caller). */
export interface DispatcherOptions<T> {
  durable: string;
  handler: Handler<T>;
  maxAckPending: number;
  maxDeliver: number;
  backoffMs: readonly number[];
  dedupe: DedupeStore;
  /** Also consult `dedupe` for first deliveries (default: only for redeliveries). */
  dedupeFirstDeliveries?: boolean;
  onError?: ((error: unknown, message: BusMessage<T>) => void) | undefined;
  hooks: SettleHooks;
  /** A window shared with other dispatchers; default: a private one of `maxAckPending`. */
  window?: Window;
  /** Counters shared with other dispatchers; default: private. */
  counters?: Counters;
}

/** How long a dedupe mark is still retried after the dispatcher stopped, ms. */
const LATE_MARK_MS = 60_000;

/** Default retry delays (ms). */
export const DEFAULT_BACKOFF_MS: readonly number[] = [200, 1000, 5000];
export const DEFAULT_MAX_DELIVER = 3;
export const DEFAULT_MAX_ACK_PENDING = 256;

/** In-memory LRU of handled keys; the default {@link DedupeStore} and the front of the KV one. */
export class MemoryDedupe implements DedupeStore {
  private readonly keys = new Map<string, true>();
  constructor(private readonly capacity = 100_000) {}
  async has(key: string): Promise<boolean> {
    return this.keys.has(key);
  }
  hasLocal(key: string): boolean {
    return this.keys.has(key);
  }
  async add(key: string): Promise<void> {
    this.addSync(key);
  }
  addSync(key: string): void {
    this.keys.delete(key);
    this.keys.set(key, true);
    if (this.keys.size > this.capacity) {
      const oldest = this.keys.keys().next();
      if (!oldest.done) this.keys.delete(oldest.value);
    }
  }
}

/**
 * A bound on messages held, shareable by several dispatchers (the NATS back end runs one per
 * owned partition under one subscription-wide window). `reserved` counts slots promised to a
 * fetch in progress.
 */
export class Window {
  held = 0;
  reserved = 0;
  private waiters: Array<() => void> = [];
  constructor(readonly max: number) {}
  get free(): number {
    return Math.max(0, this.max - this.held - this.reserved);
  }
  /** Resolves when a slot may be free (re-check `free`). */
  room(): Promise<void> {
    if (this.free > 0) return Promise.resolve();
    return new Promise((r) => this.waiters.push(r));
  }
  /** Wakes every waiter (after a release or a reservation returned). */
  wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Counters shared by the dispatchers of one subscription. */
export type Counters = Omit<ConsumerStats, "held">;

interface Lane {
  queue: Delivery[];
  running: boolean;
}

type Decision = { kind: "ack" } | { kind: "nak"; delayMs?: number } | { kind: "term"; reason?: string };

function errorText(err: unknown): string {
  if (err instanceof Error) return err.stack ? `${err.name}: ${err.message}` : err.message;
  return String(err);
}

const sleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

/** See the module comment. */
export class Dispatcher<T = unknown> {
  private readonly lanes = new Map<string, Lane>();
  private heldCount = 0;
  private idleWaiters: Array<() => void> = [];
  private readonly abort = new AbortController();
  private stopping = false;
  private readonly counters: Counters;
  readonly window: Window;
  /** Deliveries that were held when `stop` ran and were never settled. */
  private readonly unsettled = new Set<Delivery>();

  constructor(private readonly opts: DispatcherOptions<T>) {
    this.window = opts.window ?? new Window(opts.maxAckPending);
    this.counters = opts.counters ?? { handled: 0, failures: 0, deadLettered: 0, duplicatesSkipped: 0 };
  }

  /** Messages held now by this dispatcher (running, retrying, or queued). */
  get held(): number {
    return this.heldCount;
  }

  /** How many more deliveries may be pushed now (window-wide). */
  get free(): number {
    return this.window.free;
  }

  stats(): ConsumerStats {
    return { ...this.counters, held: this.window.held };
  }

  /** Resolves when at least one more delivery may be pushed (re-check `free`), or at once when stopping. */
  room(): Promise<void> {
    if (this.stopping) return Promise.resolve();
    return this.window.room();
  }

  /** Resolves when nothing is held. */
  idle(): Promise<void> {
    if (this.heldCount === 0) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  /** Every delivery currently held (for heartbeats). */
  *heldDeliveries(): Iterable<Delivery> {
    for (const lane of this.lanes.values()) yield* lane.queue;
  }

  /** Queues a delivery behind its subject. Callers respect {@link free}; the window is not enforced here. */
  push(d: Delivery): void {
    if (this.stopping) {
      this.unsettled.add(d);
      return;
    }
    this.heldCount++;
    this.window.held++;
    let lane = this.lanes.get(d.subject);
    if (!lane) {
      lane = { queue: [], running: false };
      this.lanes.set(d.subject, lane);
    }
    lane.queue.push(d);
    if (!lane.running) void this.runLane(d.subject, lane);
  }

  /**
   * Stops starting handler attempts, waits for running ones to settle, and returns the
   * deliveries never settled, in stream-sequence order (the caller hands them back to the stream).
   */
  async stop(): Promise<Delivery[]> {
    this.stopping = true;
    this.abort.abort();
    this.window.wake();
    while ([...this.lanes.values()].some((l) => l.running)) {
      await new Promise<void>((r) => this.idleWaiters.push(r));
    }
    for (const lane of this.lanes.values()) for (const d of lane.queue) this.unsettled.add(d);
    this.lanes.clear();
    this.window.held -= this.heldCount;
    this.heldCount = 0;
    this.window.wake();
    return [...this.unsettled].sort((a, b) => a.seq - b.seq);
  }

  private release(): void {
    this.heldCount--;
    this.window.held--;
    this.window.wake();
    if (this.heldCount === 0) for (const i of this.idleWaiters.splice(0)) i();
  }

  private async runLane(subject: string, lane: Lane): Promise<void> {
    lane.running = true;
    try {
      while (lane.queue.length > 0 && !this.stopping) {
        const d = lane.queue[0]!;
        let settled: boolean;
        try {
          settled = await this.process(d);
        } catch {
          settled = false; // a settle step gave up because we are stopping
        }
        if (!settled) break; // stopping in the middle of retries: stays queued, handed back by stop()
        lane.queue.shift();
        this.release();
      }
    } finally {
      lane.running = false;
      if (lane.queue.length === 0 && this.lanes.get(subject) === lane) this.lanes.delete(subject);
      // wake stop() and idle() waiters that re-check lane state
      if (this.stopping) for (const i of this.idleWaiters.splice(0)) i();
    }
  }

  /** Runs a delivery to its end; false when stopped before it settled. */
  private async process(d: Delivery): Promise<boolean> {
    const key = `${this.opts.durable}/${d.msgId}`;
    const dedupe = this.opts.dedupe;
    const checkShared = this.opts.dedupeFirstDeliveries || d.deliveryCount > 1;
    let seen = dedupe.hasLocal ? dedupe.hasLocal(key) : false;
    if (!seen && (checkShared || !dedupe.hasLocal)) seen = await this.retrying(() => dedupe.has(key), d);
    if (seen) {
      this.counters.duplicatesSkipped++;
      await this.retrying(() => this.opts.hooks.ack(d), d);
      return true;
    }
    let data: T;
    try {
      data = decodePayload(d.payload) as T;
    } catch (err) {
      await this.retrying(() => this.opts.hooks.deadLetter(d, { error: `undecodable payload: ${errorText(err)}`, attempts: 0 }), d);
      this.counters.deadLettered++;
      return true;
    }
    // a redelivery counts the attempts made before it (possibly by a process that crashed)
    let attempt = Math.max(0, d.deliveryCount - 1);
    for (;;) {
      if (this.stopping) return false;
      attempt++;
      let decision: Decision | undefined;
      const message: BusMessage<T> = {
        subject: d.subject,
        stream: d.stream,
        msgId: d.msgId,
        data,
        headers: d.headers,
        seq: d.seq,
        deliveryCount: d.deliveryCount,
        attempt,
        publishedAt: d.publishedAt,
        ack: () => {
          decision ??= { kind: "ack" };
        },
        nak: (delayMs?: number) => {
          decision ??= delayMs === undefined ? { kind: "nak" } : { kind: "nak", delayMs };
        },
        term: (reason?: string) => {
          decision ??= reason === undefined ? { kind: "term" } : { kind: "term", reason };
        },
      };
      let error: unknown;
      try {
        await this.opts.handler(message);
        decision ??= { kind: "ack" };
      } catch (err) {
        error = err;
        decision ??= { kind: "nak" };
      }
      if (decision.kind === "ack") {
        // Both at once: the mark only matters for a redelivery, which needs the ack to fail.
        const marking = this.retrying(() => this.opts.dedupe.add(key), d);
        // Stopped before the mark was stored (a lease given up while NATS is down): the message
        // will be redelivered to the next holder, which must find it handled, so the mark is
        // still written in the background once NATS is back.
        marking.catch(() => void this.markLater(key));
        await Promise.all([marking, this.retrying(() => this.opts.hooks.ack(d), d)]);
        this.counters.handled++;
        return true;
      }
      this.counters.failures++;
      const reasonText = error !== undefined ? errorText(error) : decision.kind === "term" ? (decision.reason ?? "terminated by handler") : "nak by handler";
      if (error !== undefined) {
        try {
          this.opts.onError?.(error, message);
        } catch {
          // onError must not throw; ignore if it does
        }
      }
      if (decision.kind === "term" || attempt >= this.opts.maxDeliver) {
        await this.retrying(() => this.opts.hooks.deadLetter(d, { error: reasonText, attempts: attempt }), d);
        // a dead-lettered id is done for this consumer: a redelivery must not run it again
        await this.retrying(() => this.opts.dedupe.add(key), d);
        this.counters.deadLettered++;
        return true;
      }
      const backoff = this.opts.backoffMs;
      const delay = decision.kind === "nak" && decision.delayMs !== undefined ? decision.delayMs : (backoff[Math.min(attempt, backoff.length) - 1] ?? 0);
      await sleep(delay, this.abort.signal);
    }
  }

  /** Writes a dedupe mark after a stop: retried with backoff for up to {@link LATE_MARK_MS}. */
  private async markLater(key: string): Promise<void> {
    const deadline = Date.now() + LATE_MARK_MS;
    for (let wait = 200; Date.now() < deadline; wait = Math.min(wait * 2, 2_000)) {
      try {
        await this.opts.dedupe.add(key);
        return;
      } catch {
        await new Promise((r) => setTimeout(r, wait).unref());
      }
    }
  }

  /**
   * Runs a settle step until it succeeds (NATS may be briefly unreachable); gives up when the
   * dispatcher stops, leaving the message to be redelivered (dedupe makes that safe).
   */
  private async retrying<R>(fn: () => Promise<R>, d: Delivery): Promise<R> {
    let wait = 100;
    for (;;) {
      try {
        return await fn();
      } catch (err) {
        if (this.stopping) {
          this.unsettled.add(d);
          throw err;
        }
        await sleep(wait, this.abort.signal);
        wait = Math.min(wait * 2, 2000);
      }
    }
  }
}
