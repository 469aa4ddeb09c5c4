import { sql as initial } from "./0001-initial.js";
import { sql as eventChecksum } from "./0002-event-checksum.js";
import { sql as replyOutbox } from "./0003-reply-outbox.js";
import { sql as approvalEvents } from "./0004-approval-events.js";
import { sql as searchByScan } from "./0005-search-by-scan.js";
import { sql as memoryVectors } from "./0006-memory-vectors.js";
import { sql as schemalessRows } from "./0007-schemaless-rows.js";
import { copyDedupeKeys, sql as dedupeTable } from "./0008-dedupe-table.js";
import type { MigrationContext } from "./types.js";

export type { MigrationContext, MigrationQuery } from "./types.js";

/**
 * Rows per statement of a migration's bounded copy, unless the store's options say otherwise
 * (migration 8: event rows scanned per page; a page of 5,000 rows that all carried keys held
 * ~25 MB of the engine's memory at once, bench/migrate-dedupe.mjs).
 */
export const DEFAULT_MIGRATION_BATCH_ROWS = 2_000;

/** One schema change, applied once per database in version order. */
export interface Migration {
  /** 1, 2, 3, … without gaps. */
  version: number;
  name: string;
  /** SurrealQL (SurrealDB 3.x syntax), run inside one transaction with the version's record. */
  sql: string;
  /**
   * Work too large for one transaction (copying rows of a store of any size), run before `sql`,
   * outside its transaction, as several statements of bounded size. It must be idempotent and
   * may resume: the version is recorded only by `sql`'s transaction, so a process stopped
   * midway runs it again at its next open.
   */
  prepare?: (ctx: MigrationContext) => Promise<void>;
}

/**
 * Every migration, oldest first. Add new ones at the end as `NNNN-name.ts` exporting `sql`;
 * never edit an applied one. They are TypeScript strings (not `.surql` files) so the bundled
 * host carries them.
 */
export const MIGRATIONS: readonly Migration[] = [
  { version: 1, name: "sessions and events", sql: initial },
  { version: 2, name: "event checksums", sql: eventChecksum },
  { version: 3, name: "reply outbox", sql: replyOutbox },
  { version: 4, name: "approval events", sql: approvalEvents },
  { version: 5, name: "search by scan", sql: searchByScan },
  { version: 6, name: "memory vectors", sql: memoryVectors },
  { version: 7, name: "schemaless events and sessions", sql: schemalessRows },
  { version: 8, name: "dedupe table", sql: dedupeTable, prepare: copyDedupeKeys },
];
