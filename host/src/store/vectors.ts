/**
 * The embeddings of the agents' notes, kept in the store so a restart does not embed every note
 * again (vector recall, issue 19; docs/memory.md "Storage"). A table of the embedded SurrealDB
 * store on disk (`surrealkv://` or `rocksdb://`, migration 6 `memory_vector`), reached through its own SDK
 * connection on the datastore the session log opened (store/surreal/engine.ts shares it per
 * process) — the session log's interface and internals are untouched. One row per (embedding
 * model, note id): `memory_vector:[model, note]`, `vector` as little-endian float32 bytes, `sum`
 * a checksum of the note the vector was made from (a note id reused after a delete, or a notes
 * file replaced, does not pick up a stale vector). Similarity is computed in process by the
 * memory service; SurrealDB's HNSW index was measured slower (bench/memory-vectors.mjs).
 */
import { crc32 } from "node:zlib";
import type * as Sdk from "surrealdb";
import { StoreError } from "./errors.js";
import { acquireEmbedded, embeddedEngineFactory, embeddedSchemaReady, loadSdk, type SurrealSdk } from "./surreal/engine.js";
import { isOnDiskEngine, parseSurrealUrl } from "./surreal/url.js";

/** One stored vector: the note's id, the checksum of the note's text ({@link vectorSum}), unit vector. */
export interface StoredVector {
  note: number;
  sum: number;
  vector: Float32Array;
}

/** Vectors of notes, per embedding model (`provider/model`). */
export interface VectorTable {
  /**
   * Every vector stored for `model`.
   * @throws StoreError when the store fails
   */
  load(model: string): Promise<StoredVector[]>;
  /** Stores vectors for `model` (replacing one already stored for the same note). @throws StoreError */
  put(model: string, rows: readonly StoredVector[]): Promise<void>;
  /** Deletes the vectors of these notes, every model. @throws StoreError */
  delete(notes: readonly number[]): Promise<void>;
  /** Closes this connection (the datastore stays open for the session log). */
  close(): Promise<void>;
}

/** The checksum kept with a note's vector: CRC-32 of the note's time (ms) and text. */
export function vectorSum(note: { at: number; text: string }): number {
  return crc32(`${note.at}\n${note.text}`);
}

/** Options of {@link openVectorTable}: the resolved `[store]` settings (as for `openSessionLog`). */
export interface OpenVectorTableOptions {
  url: string;
  namespace?: string | undefined;
  database?: string | undefined;
  /**
   * How long the first statement waits for the session log's schema set-up on the same store
   * (its engine may still be opening in the background), ms; default 30,000.
   */
  openTimeoutMs?: number;
}

/** Default of {@link OpenVectorTableOptions.openTimeoutMs}, ms. */
const SCHEMA_WAIT_MS = 30_000;

const toBytes = (v: Float32Array): Uint8Array => new Uint8Array(v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength));
function toVector(b: unknown): Float32Array | undefined {
  const bytes = b instanceof Uint8Array ? b : b instanceof ArrayBuffer ? new Uint8Array(b) : undefined;
  if (bytes === undefined || bytes.byteLength % 4 !== 0) return undefined;
  return new Float32Array(bytes.slice().buffer);
}

/**
 * Opens the vector table of the store at `options.url` — call after `openSessionLog` on the same
 * settings. It connects at its first statement, once that session log has opened and migrated
 * the datastore (the journaled store's engine may open after `openSessionLog` resolved). Only an embedded store on disk
 * (`surrealkv://` or `rocksdb://`) keeps vectors; for any other store (in process, `mem://`, a SurrealDB server,
 * JetStream) this resolves `undefined` and vectors stay in process.
 * Its methods throw StoreError `unavailable` when the datastore cannot be reached or its schema
 * set-up failed or took longer than `openTimeoutMs` (a later call tries again).
 */
export async function openVectorTable(options: OpenVectorTableOptions): Promise<VectorTable | undefined> {
  if (!/^(surrealkv|rocksdb):/i.test(options.url)) return undefined;
  const target = parseSurrealUrl(options.url, { namespace: options.namespace, database: options.database });
  if (!isOnDiskEngine(target.engine)) return undefined;
  const engine = target.engine;
  // Connected at the first use: the session log's engine may still be opening in the background
  // (the journaled store is ready before it: docs/architecture.md, "Start-up").
  // It waits for the session log's schema set-up (a write before migration 6 defined the table
  // would create it implicitly, and the migration would then fail); a failed connect is retried
  // at the next use.
  let connecting: Promise<{ sdk: SurrealSdk; db: Sdk.Surreal }> | undefined;
  const connect = () => {
    connecting ??= (async () => {
      await embeddedSchemaReady(target.url, target.displayUrl, options.openTimeoutMs ?? SCHEMA_WAIT_MS);
      const sdk = await loadSdk();
      let failure: unknown;
      const db: Sdk.Surreal = new sdk.Surreal({
        engines: {
          [engine]: embeddedEngineFactory(
            sdk,
            () => acquireEmbedded({ ...target, engine }),
            (err) => (failure = err),
          ),
        },
      });
      await db.connect(target.url, { namespace: target.namespace, database: target.database });
      if (failure !== undefined) throw failure;
      return { sdk, db };
    })();
    const attempt = connecting;
    attempt.catch(() => {
      if (connecting === attempt) connecting = undefined;
    });
    return attempt;
  };
  const query = async <T>(sql: string, vars: Record<string, unknown>): Promise<T> => {
    try {
      const { db } = await connect();
      return (await db.query(sql, vars).collect()) as T;
    } catch (err) {
      throw new StoreError("unavailable", `memory vectors in ${target.displayUrl}: ${(err as Error).message}`, { cause: err });
    }
  };
  return {
    async load(model) {
      const [rows] = await query<[{ note: number | bigint; sum: number | bigint; vector: unknown }[]]>(
        "SELECT note, sum, vector FROM memory_vector:[$model, 0]..=[$model, 9007199254740991];",
        { model },
      );
      const out: StoredVector[] = [];
      for (const r of rows) {
        const vector = toVector(r.vector);
        if (vector !== undefined) out.push({ note: Number(r.note), sum: Number(r.sum), vector });
      }
      return out;
    },
    async put(model, rows) {
      if (rows.length === 0) return;
      const { sdk } = await connect();
      const items = rows.map((r) => ({ id: new sdk.RecordId("memory_vector", [model, r.note]), note: r.note, sum: r.sum, vector: toBytes(r.vector) }));
      await query("INSERT INTO memory_vector $items ON DUPLICATE KEY UPDATE sum = $input.sum, vector = $input.vector RETURN NONE;", { items });
    },
    async delete(notes) {
      if (notes.length === 0) return;
      await query("DELETE memory_vector WHERE note IN $notes RETURN NONE;", { notes: [...notes] });
    },
    async close() {
      if (connecting === undefined) return;
      await connecting.then(({ db }) => db.close()).catch(() => {});
    },
  };
}
