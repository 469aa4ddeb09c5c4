// The types a migration's `prepare` step works with, apart from index.ts so that a migration
// file can import them without an import cycle.

/**
 * Runs one SurrealQL query (several statements) on the database being migrated; resolves to
 * each statement's result. @throws the first failing statement's error
 */
export type MigrationQuery = (sql: string, vars?: Record<string, unknown>) => Promise<unknown[]>;

/** What a migration's `prepare` step (`Migration` in index.ts) gets. */
export interface MigrationContext {
  query: MigrationQuery;
  /** Rows a bounded copy handles per statement (default `DEFAULT_MIGRATION_BATCH_ROWS` in index.ts). */
  batchRows: number;
  /** Called after each committed piece of work: the open's time limit counts from the last one. */
  progress(): void;
}
