/**
 * What a subscription needs of its bus ({@link SubscriptionBus}, implemented by `NatsBus`) and
 * what a partition runner needs of its subscription ({@link PartitionOwner}, implemented by
 * `NatsSubscription`). In their own file so subscription.ts and partition-runner.ts name these
 * shapes instead of importing the classes that create them (bus.ts creates subscriptions, a
 * subscription creates runners): no import cycle (tests/architecture/import-graph.test.ts).
 */
import type { JetStreamClient, JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Dispatcher } from "../dispatcher.js";
import type { ReorderClock } from "../reorder.js";
import type { StreamName } from "../subjects.js";
import type { Subscription } from "../types.js";
import type { NatsDeadLetters } from "./dead-letters.js";
import type { KvDedupe } from "./dedupe.js";

/** The bus as its subscriptions see it (see bus.ts for each member). */
export interface SubscriptionBus {
  readonly instanceId: string;
  readonly partitions: number;
  /** ms */
  readonly ackWaitMs: number;
  /** ms */
  readonly leaseTtlMs: number;
  readonly deadLetters: NatsDeadLetters;
  readonly dedupe: KvDedupe;
  readonly reorder: ReorderClock;
  readonly ready: boolean;
  readonly nc: NatsConnection | undefined;
  readonly js: JetStreamClient | undefined;
  readonly jsm: JetStreamManager | undefined;
  readonly leases: KV | undefined;
  warn(message: string, error?: unknown): void;
  /** Resolves when connected and ready (or the bus closes). */
  whenReady(): Promise<void>;
  /** Drops a stopped subscription from the bus's set. */
  forget(sub: Subscription): void;
}

/** The subscription as its partition runners see it (see subscription.ts for each member). */
export interface PartitionOwner {
  readonly bus: SubscriptionBus;
  readonly durable: string;
  readonly stream: StreamName;
  consumerName(k: number): string;
  ownedCount(): number;
  newDispatcher(): Dispatcher<unknown>;
}
