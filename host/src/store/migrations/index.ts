import { sql as initial } from "./0001-initial.js";
import { sql as eventChecksum } from "./0002-event-checksum.js";
import { sql as replyOutbox } from "./0003-reply-outbox.js";
import { sql as approvalEvents } from "./0004-approval-events.js";
import { sql as searchByScan } from "./0005-search-by-scan.js";
import { sql as memoryVectors } from "./0006-memory-vectors.js";
import { sql as schemalessRows } from "./0007-schemaless-rows.js";
import { sql as dedupeTable } from "./0008-dedupe-table.js";

/** One schema change, applied once per database in version order. */
export interface Migration {
  /** 1, 2, 3, … without gaps. */
  version: number;
  name: string;
  /** SurrealQL (SurrealDB 3.x syntax), run inside one transaction with the version's record. */
  sql: string;
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
  { version: 8, name: "dedupe table", sql: dedupeTable },
];
