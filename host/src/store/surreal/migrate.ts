/**
 * The SurrealDB store's schema set-up at open: which of `store/migrations/` a database has not
 * seen, applied in order, each recorded in the `migration` table in its own transaction; and the
 * time limit around it, which restarts at each piece of work done (a large store's copy runs in
 * many pieces).
 */
import type * as Sdk from "surrealdb";
import { StoreError } from "../errors.js";
import { MIGRATIONS, type MigrationQuery } from "../migrations/index.js";
import type { SurrealTarget } from "./url.js";

/** A server error that only says an earlier statement of the transaction failed. */
export function isKnockOn(err: unknown): boolean {
  const kind = (err as { details?: { kind?: string } } | undefined)?.details?.kind;
  return kind === "NotExecuted" || kind === "Cancelled";
}

/**
 * `run(progress)` with a time limit that restarts at every `progress()` call.
 * @throws StoreError `unavailable` (`what()`) when `ms` pass without progress; `run`'s error
 */
export async function withProgressTimeout<T>(run: (progress: () => void) => Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  let expire: (err: StoreError) => void = () => {};
  const expired = new Promise<never>((_, reject) => {
    expire = reject;
  });
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => expire(new StoreError("unavailable", what())), ms);
  };
  arm();
  try {
    return await Promise.race([run(arm), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Runs the migrations this database has not seen, each in its own transaction (after its
 * `prepare` step, if any, which runs in pieces of at most `batchRows` rows and calls `progress`
 * after each, and after each migration's transaction).
 * @param db a connected SDK handle (embedded or server; a server's namespace and database are
 *   defined when missing, best effort, and selected here)
 * @throws StoreError `schema` when the engine is older than SurrealDB 3, the database was migrated
 *   by a newer exoclaw, or a migration fails (unless another process applied it meanwhile)
 */
export async function migrate(db: Sdk.Surreal, target: SurrealTarget, steps: { batchRows: number; progress: () => void }): Promise<void> {
  const server = target.engine === "ws" || target.engine === "wss";
  const readApplied = () => db.query<[{ id: Sdk.RecordId }[]]>(`SELECT id FROM migration;`).responses();
  // Embedded: the read goes with the version check (a server needs its namespace selected first).
  const early = server ? undefined : readApplied();
  early?.catch(() => {});
  const { version } = await db.version();
  const major = Number(/(\d+)\.\d+/.exec(version)?.[1] ?? "0");
  if (major < 3) throw new StoreError("schema", `SurrealDB store ${target.displayUrl}: server ${version} is too old; the schema needs SurrealDB 3.x`);
  if (server) {
    // Best effort: a namespace- or database-level user may not define these, but then they exist.
    await db
      .query(`DEFINE NAMESPACE IF NOT EXISTS ${target.namespace}; USE NS ${target.namespace}; DEFINE DATABASE IF NOT EXISTS ${target.database};`)
      .collect()
      .catch(() => {});
    await db.use({ namespace: target.namespace, database: target.database });
  }
  const applied = async () => {
    const [rows] = await db.query<[{ id: Sdk.RecordId }[]]>(`SELECT id FROM migration;`).collect();
    return new Set(rows.map((r) => Number(r.id.id)));
  };
  const newest = MIGRATIONS[MIGRATIONS.length - 1]!.version;
  // A store at the current schema (every start but the first) costs one read: no DEFINE runs.
  // The migration table's own definition is (re)applied only when a migration is due, or when
  // the read fails (a new database: SurrealDB 3 answers NotFound for a table never defined).
  const [first] = await (early ?? readApplied());
  let done = first?.success ? new Set((first.result as { id: Sdk.RecordId }[]).map((r) => Number(r.id.id))) : new Set<number>();
  if (!MIGRATIONS.every((m) => done.has(m.version))) {
    await db
      .query(
        `DEFINE TABLE IF NOT EXISTS migration SCHEMAFULL;
DEFINE FIELD IF NOT EXISTS name ON migration TYPE string;
DEFINE FIELD IF NOT EXISTS applied_at ON migration TYPE int;`,
      )
      .collect();
    done = await applied();
  }
  const ahead = [...done].filter((v) => v > newest);
  if (ahead.length > 0) {
    throw new StoreError("schema", `SurrealDB store ${target.displayUrl} has schema version ${Math.max(...ahead)}, newer than this exoclaw knows (${newest})`);
  }
  const query: MigrationQuery = (sql, vars) => db.query(sql, vars).collect();
  for (const m of MIGRATIONS) {
    if (done.has(m.version)) continue;
    await m.prepare?.({ query, batchRows: steps.batchRows, progress: steps.progress });
    const responses = await db
      .query(`BEGIN TRANSACTION;\n${m.sql}\nCREATE type::record('migration', $version) CONTENT { name: $name, applied_at: $now };\nCOMMIT TRANSACTION;`, {
        version: m.version,
        name: m.name,
        now: Date.now(),
      })
      .responses();
    steps.progress();
    const failure = responses.find((r) => !r.success && !isKnockOn(r.error)) ?? responses.find((r) => !r.success);
    if (failure && !failure.success) {
      // Another process may have applied it at the same time.
      done = await applied();
      if (done.has(m.version)) continue;
      throw new StoreError("schema", `SurrealDB store ${target.displayUrl}: migration ${m.version} (${m.name}) failed: ${failure.error.message}`, {
        cause: failure.error,
      });
    }
  }
}
