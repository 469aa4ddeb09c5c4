/**
 * The message bus (issue 7): subjects, payloads, the {@link Bus} interface and its two back
 * ends. See docs/bus.md.
 */
import { createMemoryBus, type MemoryBusOptions } from "./memory.js";
import type { AbortRelay, AbortRelayOptions, ApprovalRelay, ApprovalRelayOptions, NatsBus, NatsBusOptions } from "./nats/index.js";
import type { Bus } from "./types.js";
import type { BudgetLedger } from "../agent/index.js";

// The NATS client (~65 ms to import) is loaded only when a NATS bus is created: import
// `./nats/index.js` directly for its classes and constants. (The JetStream session log is the
// store's: store/jetstream-store.ts.)
export { createMemoryBus, MemoryBus, type MemoryBusOptions } from "./memory.js";
export type { NatsBus, NatsBusOptions, AbortRelay, AbortRequest, AbortAnswer, AbortBy } from "./nats/index.js";
export { BusError, type BusErrorCode } from "./errors.js";
export { encodePayload, decodePayload, MSG_ID_HEADER, REPLAY_OF_HEADER, PUBLISHED_AT_HEADER } from "./codec.js";
export { MemoryDedupe, DEFAULT_BACKOFF_MS, DEFAULT_MAX_ACK_PENDING, DEFAULT_MAX_DELIVER } from "./dispatcher.js";
export {
  escapeToken,
  unescapeToken,
  inboundSubject,
  outboundSubject,
  eventsSubject,
  parseSubject,
  partitionOf,
  SubjectError,
  STREAM_NAMES,
  type Address,
  type ParsedSubject,
} from "./subjects.js";
export { dlqList, dlqReplay, dlqPurge, formatDeadLetters } from "./dlq-cli.js";
export { claimBusInstance, type BusInstance } from "./instance.js";
export type {
  Bus,
  BusMessage,
  BusStatus,
  ConsumeOptions,
  ConsumerStats,
  DeadLetter,
  DeadLetterStore,
  DedupeStore,
  Handler,
  PublishAck,
  PublishOptions,
  ReplayResult,
  StreamName,
  Subscription,
  TurnOwners,
  TurnOwnerScope,
} from "./types.js";

/** Options of {@link openSharedBudgetLedger}. */
export interface SharedBudgetLedgerOptions {
  /** Fraction (0..1] of a limit at which a counter is reported (`[budgets] warn_at`). */
  warnAt: number;
  /** How long an unsettled reservation counts, ms (longer than any model call). */
  reservationTtlMs: number;
  /** Told when settlements cannot be written yet (they are retried). */
  onWarning?: (message: string, error?: unknown) => void;
}

/**
 * The budget ledger shared by every gateway on `bus` (NATS KV with compare-and-set; see
 * nats/budget-ledger.ts), or undefined for the in-process bus (the in-process ledger is enough).
 * Call `close()` on shutdown.
 */
export async function openSharedBudgetLedger(bus: Bus, options: SharedBudgetLedgerOptions): Promise<(BudgetLedger & { close(): void }) | undefined> {
  if (bus.kind !== "nats") return undefined;
  const { KvBudgetLedger } = await import("./nats/index.js");
  return new KvBudgetLedger({ bus: bus as NatsBus, ...options });
}

/**
 * Stop requests between the gateways on `bus` (`chat.abort` / `/stop` of a turn running in
 * another gateway; see nats/control.ts): answers the others' requests with `handle`, sends this
 * one's with `request`. Undefined for the in-process bus (one process: nothing runs elsewhere).
 * Call `close()` on shutdown.
 */
export async function openAbortRelay(bus: Bus, options: Omit<AbortRelayOptions, "bus">): Promise<AbortRelay | undefined> {
  if (bus.kind !== "nats") return undefined;
  const { AbortRelay: Relay } = await import("./nats/index.js");
  return new Relay({ bus: bus as NatsBus, ...options });
}

/**
 * Approval answers between the gateways on `bus` (an approval parked in another gateway; see
 * nats/approval-relay.ts). Undefined for the in-process bus. Call `close()` on shutdown.
 */
export async function openApprovalRelay<T>(bus: Bus, options: Omit<ApprovalRelayOptions<T>, "bus">): Promise<ApprovalRelay<T> | undefined> {
  if (bus.kind !== "nats") return undefined;
  const { ApprovalRelay: Relay } = await import("./nats/index.js");
  return new Relay<T>({ bus: bus as NatsBus, ...options });
}

/** Which bus to create: in-process (the default) or NATS. */
export type BusConfig = ({ kind: "memory" } & MemoryBusOptions) | ({ kind: "nats" } & NatsBusOptions);

/**
 * Creates a bus. The in-process one needs nothing; the NATS one resolves also when NATS is down
 * (publishes are spooled under `stateDir` until it is reachable).
 * @throws BusError `invalid_argument` for bad options
 */
export async function createBus(config: BusConfig): Promise<Bus> {
  if (config.kind === "nats") {
    const { kind: _kind, ...options } = config;
    const { createNatsBus } = await import("./nats/index.js");
    return createNatsBus(options);
  }
  const { kind: _kind, ...options } = config;
  return createMemoryBus(options);
}
