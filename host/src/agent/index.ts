/**
 * The agent folder's public API. `AgentRuntime` (runtime.ts) is the front the gateway, the CLI and
 * the channels use; its parts (lanes.ts, turn.ts, idempotency.ts, recovery.ts, cached-log.ts, ...)
 * are internal and not exported. The loop, the queues, the policies and the provider set are
 * exported for tests and benches that drive them directly.
 */
export { AgentRuntime, ReplayedTurnError, INTERRUPTED_MESSAGE, DROPPED_MESSAGE, COLLECT_SEPARATOR } from "./runtime.js";
export type { AgentRuntimeOptions, TurnRequest, TurnResult, RunHooks, RecoveredTurn, RecoveryReport, SettledTurn } from "./runtime.js";
export { SessionQueues } from "./queue.js";
export type { QueueItem } from "./queue.js";
export { SoulFiles, joinSystemPrompt, MAX_SOUL_BYTES } from "./soul.js";
export { compileOutboundAllowlist } from "./outbound-policy.js";
export type { OutboundPolicy } from "./outbound-policy.js";
export { messageSend, MESSAGE_SEND, MESSAGE_SEND_SPEC, BUILTIN_TOOL_NAMES, MAX_MESSAGE_SEND_CHARS } from "./builtin-tools.js";
export type { MessageSendContext } from "./builtin-tools.js";
export type { HostTool, HostToolContext } from "./turn-tools.js";
export { projectHistory, COMPACTION_SUMMARY_ACK, COMPACTION_SUMMARY_PREFIX } from "./projection.js";
export { runTurn } from "./loop.js";
export type { TurnInput, TurnRecord, TurnTools } from "./loop.js";
export { compileToolAllowlist } from "./tool-policy.js";
export {
  ProviderError,
  InterruptedTurnError,
  ProviderStallError,
  TurnTimeoutError,
  ClientGoneError,
  TurnStoppedError,
  ToolLoopError,
  CONFIGURE_HINT,
} from "./errors.js";
export type { GatewayStopReason, FailureReason, StoppedBy } from "./errors.js";
export { AgentError, failureReason, isReplay, isInterrupted, isTransient, isTransientRefusal, isTurnAborted, isSessionBusy, isOrphanClaim } from "./errors.js";
export { createProviderSet, providerWarmUp, providersInUse, resiliencePolicies, warmProviders, type ProviderWarmUp } from "./providers/index.js";
export { ProviderResilience, DEFAULT_RESILIENCE, backoffMs, CircuitBreaker, KeyRing, classify } from "./resilience/index.js";
export type { ModelRef, ResiliencePolicy, SwitchNotice, SwitchReason } from "./resilience/index.js";
export type * from "./types.js";
export { BudgetGuard, MemoryLedger, PriceTable, DEFAULT_PRICES, costUsd, calendarWindow, estimateInputTokens, summarizeUsage } from "./budget/index.js";
export { MemoryService, NoteStore, openMemoryService, notesFile, forgetPeer, MEMORY_CONTEXT_PREFIX, MEMORY_TOOL, SESSION_SEARCH } from "./memory/index.js";
export type { ForgetResult, ForgetTarget, MemoryPolicy, MemoryScope, Note, NoteHit, ScopeFilter } from "./memory/index.js";
export type {
  BudgetGuardOptions,
  BudgetLedger,
  Charge,
  CounterLimit,
  CounterWarning,
  Reservation,
  UsageSummary,
  UsageGroupBy,
  UsageSummaryOptions,
} from "./budget/index.js";
// Lifecycle hooks (docs/hooks.md) and durable human approvals of tool calls.
export { createLifecycleHooks, LifecycleHooks, HookFailedError, hookContext } from "./hooks/index.js";
export type { HookCallReport, HookContext } from "./hooks/index.js";
export { ApprovalBook, parseApprovalCommand } from "./approvals/book.js";
export type { PendingApproval, ApprovalDecision } from "./approvals/book.js";
// Inbound images kept for later turns (`<stateDir>/media`).
export { deleteSessionAndMedia, MediaStore, mediaRefsOf, MEDIA_STORE_MAX_BYTES } from "./media-store.js";
export type { MediaRef, MediaStoreOptions } from "./media-store.js";
