/**
 * Which embedded engine a store directory was written by, from its contents (no engine opened).
 *
 * Layouts (SurrealDB 3.0.2 in `@surrealdb/node` 3.0.3, read from directories it wrote):
 * - RocksDB: files `CURRENT`, `IDENTITY`, `MANIFEST-<n>`, `OPTIONS-<n>`, `<n>.log` (its WAL),
 *   `<n>.sst`, `<n>.blob`, `LOCK`, `LOG`.
 * - SurrealKV: directories `wal/`, `sstables/`, `vlog/`, `manifest/`, file `LOCK`.
 * exoclaw's own journal (`journal/`) may sit in either; a directory holding nothing else has no
 * engine data yet (every journal record is projected again at open, into whichever engine).
 */
import { readdirSync } from "node:fs";

/** The engine new store directories get (docs/reliability.md, "Memory under steady load", for why). */
export const DEFAULT_ON_DISK_ENGINE = "rocksdb" as const;

/**
 * The engine whose files are in `dir`: `rocksdb` (a `CURRENT` or `IDENTITY` file), `surrealkv`
 * (any other entry besides `journal/`: the engine of every store made before rocksdb became the
 * default), or undefined for a directory that is absent, empty or holds only the journal.
 * Synchronous (config loading uses it); reads one directory listing.
 * @throws the file system's error for a directory that exists but cannot be listed
 */
export function detectOnDiskEngine(dir: string): "surrealkv" | "rocksdb" | undefined {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
  if (names.includes("CURRENT") || names.includes("IDENTITY")) return "rocksdb";
  return names.some((n) => n !== "journal") ? "surrealkv" : undefined;
}
