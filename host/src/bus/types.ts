/**
 * The message bus: one interface, two back ends (in-process and NATS JetStream).
 *
 * Guarantees common to both (details and limits in docs/bus.md):
 * - `publish` resolves once the message is durable in the back end's terms (see {@link PublishAck}).
 * - Delivery is at-least-once; each consumer skips message ids it has already handled, so a
 *   handler sees a message again only if its earlier attempt did not complete.
 * - Messages of one logical subject (one channel address, or one agent's events) are handled one
 *   at a time, in publish order; different subjects are handled concurrently.
 * - A handler that returns acks the message; one that throws is retried in place after a backoff
 *   (keeping its subject's order); after `maxDeliver` failed attempts it goes to the dead-letter store.
 * - A slow consumer slows delivery (bounded in-flight window, bounded queues); nothing is dropped.
 */
import type { BusStatus } from "../protocol/index.js";
import type { StreamName } from "./subjects.js";

export type { StreamName } from "./subjects.js";

/** Options of {@link Bus.publish}. */
export interface PublishOptions {
  /**
   * The message id: unique per message (e.g. `<channel>:<account>:<platform message id>`), 1..256
   * characters. The dedupe key end to end: the stream drops a re-publish within its dedupe window
   * and consumers skip ids they have handled. Reuse it when retrying a publish.
   */
  msgId: string;
  /** Extra headers (ASCII names and values); `Nats-*` names are reserved. */
  headers?: Record<string, string>;
  /**
   * false: never put this message in the disk spool. When it cannot go straight into the stream
   * (NATS unreachable, a publish timeout, or older messages still waiting in the spool), the
   * publish fails with `BusError` `unavailable` instead, so the caller can refuse it upstream
   * (a channel webhook answers 503 and the platform redelivers, in order). Default true. The
   * in-process bus has no spool and ignores it.
   */
  spool?: boolean;
}

/** What {@link Bus.publish} resolves to. */
export interface PublishAck {
  msgId: string;
  /**
   * Where the message was made durable:
   * - `stream`: in the back end's stream (JetStream file storage; for the in-process bus, its
   *   in-memory queue — durable for the life of the process).
   * - `spool`: NATS was unreachable; appended (fsync'd) to the disk spool, forwarded in order when
   *   NATS returns.
   */
  storedIn: "stream" | "spool";
  /** The stream sequence, when `storedIn` is `stream`. */
  seq?: number;
  /** The stream already held this message id within its dedupe window; nothing new was stored. */
  duplicate: boolean;
}

/** A message as a handler sees it. */
export interface BusMessage<T = unknown> {
  /** The logical subject, e.g. `exoclaw.in.telegram.bot1.42`. */
  readonly subject: string;
  readonly stream: StreamName;
  readonly msgId: string;
  /** The decoded MessagePack payload. */
  readonly data: T;
  /** Headers as published (plus `Nats-Msg-Id`). */
  readonly headers: Readonly<Record<string, string>>;
  /** The stream sequence (increasing in publish order within a stream). */
  readonly seq: number;
  /** Times the back end has delivered this message (1 the first time; more after a crash or lost ack). */
  readonly deliveryCount: number;
  /** The handler attempt this is, 1-based (counts earlier failed attempts, also in crashed processes). */
  readonly attempt: number;
  /** When the message was first published, ms since the Unix epoch. */
  readonly publishedAt: number;
  /**
   * Explicit outcome, applied when the handler settles (the default is ack on return, retry on
   * throw): `ack()` handled; `nak(delayMs)` retry after the delay (counts as a failed attempt);
   * `term(reason)` dead-letter now, without further attempts. The first call wins.
   */
  ack(): void;
  nak(delayMs?: number): void;
  term(reason?: string): void;
}

/** Handles one message. Resolve when its outcome is persisted; throw to retry. */
export type Handler<T = unknown> = (message: BusMessage<T>) => Promise<void> | void;

/** Options of {@link Bus.consume}. */
export interface ConsumeOptions<T = unknown> {
  /** Which stream to consume. */
  stream: StreamName;
  /**
   * The durable consumer name ([A-Za-z0-9_-], 1..64). Processes using the same name share the
   * work (each message handled by one of them); its position survives restarts.
   */
  durable: string;
  /** Only this channel's subjects (in/out streams only). A different filter needs a different `durable`. */
  channel?: string;
  handler: Handler<T>;
  /** Most messages held by this process at once (in flight plus queued behind their subject); default 256. */
  maxAckPending?: number;
  /** Attempts before a message is dead-lettered; default 3. */
  maxDeliver?: number;
  /** Delay before retry n (1-based) is `backoffMs[min(n, length) - 1]`; default `[200, 1000, 5000]`. */
  backoffMs?: readonly number[];
  /** Called for every failed attempt (for logging); must not throw. */
  onError?: (error: unknown, message: BusMessage<T>) => void;
}

/** Counters of one subscription (this process only). */
export interface ConsumerStats {
  /** Handler calls that returned (messages acked). */
  handled: number;
  /** Failed attempts (thrown or `nak`). */
  failures: number;
  deadLettered: number;
  /** Deliveries skipped because their message id was already handled. */
  duplicatesSkipped: number;
  /** Messages held now: running, waiting for retry, or queued behind their subject. */
  held: number;
}

/** A running consumer. */
export interface Subscription {
  readonly durable: string;
  readonly stream: StreamName;
  stats(): ConsumerStats;
  /**
   * Stops taking messages, waits for running handler calls, and hands back those not handled
   * (they are redelivered to the next consumer with this name, in order). Idempotent.
   */
  stop(): Promise<void>;
}

/** A message that failed `maxDeliver` times (or was `term`ed). */
export interface DeadLetter {
  /** The dead-letter store's id for this entry (opaque). */
  id: string;
  subject: string;
  stream: StreamName;
  msgId: string;
  data: unknown;
  headers: Record<string, string>;
  /** The durable consumer whose handler failed. */
  consumer: string;
  attempts: number;
  /** The last error, as text. */
  error: string;
  /** When it was dead-lettered, ms since the Unix epoch. */
  failedAt: number;
}

/** Result of replaying one dead letter. */
export interface ReplayResult {
  id: string;
  /** The id it was re-published with (`<msgId>~r<dead-letter id>`, so a second replay of the same entry dedupes). */
  msgId: string;
  ack: PublishAck;
}

/** Where dead letters go. Backs `exoclaw dlq list|replay|purge`. */
export interface DeadLetterStore {
  /** Entries, oldest first. */
  list(options?: { limit?: number; consumer?: string }): Promise<DeadLetter[]>;
  count(): Promise<number>;
  /**
   * Re-publishes entries to their original subjects (header `Exoclaw-Replay-Of` = the original id)
   * and removes them from the store; all entries when `ids` is omitted.
   * @throws BusError `not_found` for an unknown id (nothing replayed)
   */
  replay(ids?: readonly string[]): Promise<ReplayResult[]>;
  /** Removes entries (all when `ids` is omitted); returns how many were removed. */
  purge(ids?: readonly string[]): Promise<number>;
}

/** Health of a bus, for `status` and logs (its wire shape is the protocol's, protocol/types.ts). */
export type { BusStatus };

/** The bus. Both back ends implement it; pick one with `createBus`. */
/** Who runs turns: a durable consumer of a stream, in whose member set the claimer is listed. */
export interface TurnOwnerScope {
  stream: StreamName;
  durable: string;
}

/**
 * Cross-process record of the turns being run (NATS bus only; the in-process bus has one process
 * and needs none). Every method is best effort: with NATS unreachable it does nothing and
 * `heldElsewhere` answers false, which is the behaviour without a record (the turn runs again);
 * connected, a read that fails makes `heldElsewhere` answer true (the caller waits and asks
 * again, within its bounded wait, rather than run a turn that may be running elsewhere twice).
 */
export interface TurnOwners {
  /**
   * Records that this process runs the turn of idempotency key `key` (call once it is journaled).
   * Creates the claim only when none is held: another process's claim is never overwritten.
   * @returns whether this process now holds the claim (false when NATS is unreachable)
   */
  claim(scope: TurnOwnerScope, key: string): Promise<boolean>;
  /** Removes the claim on `key` (call when this process holds it and the turn ended, whatever its outcome). */
  release(key: string): Promise<void>;
  /**
   * Whether another process that is still a live member of `scope`'s consumer claimed `key` and
   * has not released it: the turn is running there. True also when a read fails while connected
   * (the caller's wait is bounded).
   */
  heldElsewhere(key: string): Promise<boolean>;
}

export interface Bus {
  readonly kind: "memory" | "nats";
  /**
   * Publishes `data` (encoded as standard MessagePack) to a logical subject. Concurrent publishes
   * to one subject keep their call order.
   * @throws BusError `invalid_argument` (bad subject, msgId or header), `too_large`,
   *   `backpressure` (the stream stayed full for the publish timeout), `closed`, `spool` (disk failure)
   */
  publish(subject: string, data: unknown, options: PublishOptions): Promise<PublishAck>;
  /**
   * Starts a durable consumer. Resolves once it is registered; with NATS down it resolves at
   * once and starts consuming when NATS is reachable.
   * @throws BusError `invalid_argument` (bad name or options; in-process: the name already consumed)
   */
  consume<T = unknown>(options: ConsumeOptions<T>): Promise<Subscription>;
  readonly deadLetters: DeadLetterStore;
  /**
   * Which live process runs which message's turn, across processes (NATS only; absent for the
   * in-process bus, where one process runs everything). See {@link TurnOwners}.
   */
  readonly turnOwners?: TurnOwners;
  status(): BusStatus;
  /** Stops every subscription, flushes what can be flushed, releases resources. Idempotent. */
  close(): Promise<void>;
}

/**
 * Remembers handled message ids (consumer-side dedupe). Keys are `<durable>/<msgId>`.
 * Implementations: in-memory LRU (per process) and JetStream KV (shared by every process).
 */
export interface DedupeStore {
  has(key: string): Promise<boolean>;
  add(key: string): Promise<void>;
  /**
   * A cheap local answer (no I/O), when the store keeps a local cache. When present, the
   * dispatcher asks `has` only for redeliveries, where a duplicate can come from another process.
   */
  hasLocal?(key: string): boolean;
}
