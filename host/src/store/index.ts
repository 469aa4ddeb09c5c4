export { createMemorySessionLog } from "./memory-log.js";
// The JetStream session log (store/jetstream-store.ts) loads the NATS client: openSessionLog imports it
// on demand for a nats:// URL, so only its options type is exported here.
export type { JetStreamSessionLogOptions } from "./jetstream-store.js";
export { openSessionLog, describeStoreUrl, JOURNAL_DIR, MEMORY_STORE_URL, type OpenSessionLogOptions } from "./open.js";
export { createJournaledSessionLog, openJournalFiles, type JournaledSessionLogOptions } from "./journal/index.js";
export { createSurrealSessionLog, parseSurrealUrl, type SurrealSessionLog, type SurrealSessionLogOptions, type SurrealTarget } from "./surreal/index.js";
export { checkSurrealKvWal, describeWalDamage, type WalCheck, type WalDamage } from "./surreal/wal-check.js";
export { checkRocksDbWal } from "./surreal/rocksdb-wal.js";
export { DEFAULT_ON_DISK_ENGINE, detectOnDiskEngine } from "./surreal/detect.js";
export {
  StoreError,
  StoreCorruptError,
  SeqConflictError,
  DuplicateEventError,
  isDiskFullError,
  type PublicStoreFailure,
  type StoreErrorCode,
  type StoreHealth,
} from "./errors.js";
export { formatSessionKey, parseSessionKey } from "./session-key.js";
export { pendingMessages, TEXT_FIELD } from "./events.js";
export { redactEvent, redactText, REDACTION_PATTERNS, type RedactionPattern } from "./redact.js";
export { EVENT_KINDS } from "./types.js";
export type {
  AppendOptions,
  EventDataMap,
  EventKind,
  ListSessionsOptions,
  NewSessionEvent,
  PruneOptions,
  PruneResult,
  ReadOptions,
  SearchHit,
  SearchOptions,
  SessionEvent,
  SessionEventOf,
  SessionInfo,
  SessionKeyParts,
  SessionLog,
  SessionLogOptions,
  SessionPage,
  TurnStopReason,
} from "./types.js";
export { openVectorTable, vectorSum, type StoredVector, type VectorTable, type OpenVectorTableOptions } from "./vectors.js";
