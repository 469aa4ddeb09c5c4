/**
 * The NATS JetStream back end of the bus: the public surface of this folder (see bus.ts for the
 * design, docs/bus.md for the wire format). `bus/index.ts` loads it lazily, so importing the bus
 * does not load the NATS client.
 */
export {
  createNatsBus,
  NatsBus,
  assignPartitions,
  DEFAULT_REORDER_WINDOW_MS,
  NATS_STREAMS,
  DLQ_STREAM,
  DLQ_SUBJECT_PREFIX,
  LEASE_BUCKET,
  DEDUPE_BUCKET,
  type NatsBusOptions,
} from "./bus.js";
export { KvBudgetLedger, BUDGET_BUCKET, BUDGET_MAX_AGE_MS, counterKvKey, type KvBudgetLedgerOptions, type BudgetLedgerBus } from "./budget-ledger.js";
export { AbortRelay, ABORT_SUBJECT, type AbortRelayOptions, type AbortRelayBus, type AbortRequest, type AbortAnswer, type AbortBy } from "./control.js";
export { ApprovalRelay, APPROVAL_SUBJECT, type ApprovalRelayOptions, type ApprovalRelayBus, type RelayAnswerer, type RelayOutcome } from "./approval-relay.js";
export { RequestRelay, type RequestRelayOptions, type RequestRelayBus, type Relayed } from "./request-relay.js";
export { KvCells, kvKeyOf, type KvCellsBus, type KvCellsOptions } from "./kv-cell.js";
