/**
 * Memory limits of the embedded engines (SurrealKV and RocksDB), set before one first opens in
 * this process.
 *
 * RocksDB (`rocksdb://`; SurrealDB `core/src/kvs/rocksdb/cnf.rs`, v3.0.2, RAM-sized defaults):
 * - `SURREAL_ROCKSDB_WRITE_BUFFER_SIZE`: one memtable (write buffer). Default 32-128 MiB by RAM
 *   (128 MiB from 16 GiB). exoclaw: 16 MiB.
 * - `SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER`: memtables alive at once (the one filling and those
 *   waiting for their flush). Default 2-32 by RAM (8 on 16-64 GiB: up to 1 GiB of memtables).
 *   exoclaw: 2. `SURREAL_ROCKSDB_MIN_WRITE_BUFFER_NUMBER_TO_MERGE` (default 2) must stay below
 *   it: exoclaw 1 (each full memtable is flushed on its own).
 * - `SURREAL_ROCKSDB_BLOCK_CACHE_SIZE`: the LRU block cache. Default half the RAM minus 1 GiB, at
 *   least 16 MiB. exoclaw: 64 MiB.
 * - `SURREAL_ROCKSDB_COMPACTION_READAHEAD_SIZE`: the read buffer of each compaction input. Default
 *   4-16 MiB by RAM. exoclaw: 4 MiB.
 * These are applied as plain digits (RocksDB's count and byte settings parse them either way).
 *
 * Open time: the engine computes each RAM-sized default above with `sysinfo::System::new_all()`,
 * which reads `/proc/<pid>/{stat,status,statm,io,environ,cmdline}` and the same for every thread
 * of every process on the machine (measured: ~880 files with 84 processes; 60 ms of a ~270 ms
 * RocksDB open at load 3, more on a busy machine). So every setting whose engine default is
 * RAM-sized is set here, and the open reads no other process's files. Where exoclaw has no reason
 * to bound a setting (`SURREAL_SURREALKV_VLOG_MAX_FILE_SIZE`, the size at which SurrealKV starts
 * a new value-log file: 64-512 MiB by RAM), it gets the engine's own default for this machine's
 * RAM ({@link engineRamBytes}).
 *
 * SurrealKV (`surrealkv://`):
 *
 * The engine sizes its memory from environment variables it reads once per process (SurrealDB
 * `surrealdb/core/src/kvs/surrealkv/cnf.rs`, `lazy_env_parse!`, v3.0.2), and its defaults grow
 * with the machine's RAM:
 * - `SURREAL_SURREALKV_BLOCK_CACHE_CAPACITY`: the cache of SSTable blocks (data, index, filter).
 *   Default: half the RAM (or cgroup limit) minus 1 GiB, at least 16 MiB — 11 GiB on a 24 GiB
 *   machine. The cache fills as SSTables are written and read, so the process's RSS follows it.
 * - `SURREAL_SURREALKV_MAX_MEMTABLE_SIZE`: the write buffer's arena. SurrealDB 3.0.2 (the one in
 *   `@surrealdb/node` 3.0.3) does not read it: its memtable is SurrealKV 0.20.2's fixed 100 MB,
 *   and the engine keeps the last flushed one for conflict checks, so up to ~200 MB of RSS is
 *   memtable. SurrealDB's main branch (after 3.0.5; commit 28755c5, #7187) reads it and sizes it
 *   from RAM (1 GiB on 16-64 GiB machines), so it is set here for the engine an upgrade brings.
 *
 * Values use the engine's byte grammar (digits, then optional `b`, `k`/`kb`/`kib`, `m`/`mb`/`mib`,
 * `g`/`gb`/`gib`, case-insensitive; SurrealDB `surrealdb/core/src/str/bytes.rs`). The engine
 * silently falls back to its RAM-sized default for a value it cannot parse, so one is rejected
 * here instead. See docs/reliability.md ("Memory under steady load") for the measurements.
 */
import { totalmem } from "node:os";
import { StoreError } from "../errors.js";

/** One engine memory setting: its environment variable, exoclaw's default (bytes) and lower bound. */
export interface EngineMemorySetting {
  /** Environment variable the engine reads. */
  name: string;
  /** Value exoclaw sets when the operator has not, bytes (or a count); a function gets the machine's RAM in bytes. */
  defaultBytes: number | ((ramBytes: number) => number);
  /** Smallest value accepted, bytes (a memtable smaller than one transaction fails that transaction). */
  minBytes: number;
  /** `count` for a number of things (digits only), else a byte size. */
  unit?: "count";
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/** The settings, with exoclaw's defaults (measured with `npm run bench:soak`). */
export const ENGINE_MEMORY_SETTINGS: readonly EngineMemorySetting[] = [
  { name: "SURREAL_SURREALKV_BLOCK_CACHE_CAPACITY", defaultBytes: 64 * MiB, minBytes: 1 * MiB },
  { name: "SURREAL_SURREALKV_MAX_MEMTABLE_SIZE", defaultBytes: 64 * MiB, minBytes: 16 * MiB },
  { name: "SURREAL_ROCKSDB_BLOCK_CACHE_SIZE", defaultBytes: 64 * MiB, minBytes: 1 * MiB },
  { name: "SURREAL_ROCKSDB_WRITE_BUFFER_SIZE", defaultBytes: 16 * MiB, minBytes: 1 * MiB },
  { name: "SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER", defaultBytes: 2, minBytes: 2, unit: "count" },
  { name: "SURREAL_ROCKSDB_MIN_WRITE_BUFFER_NUMBER_TO_MERGE", defaultBytes: 1, minBytes: 1, unit: "count" },
  { name: "SURREAL_ROCKSDB_COMPACTION_READAHEAD_SIZE", defaultBytes: 4 * MiB, minBytes: 0 },
  // The engine's own rule (SurrealDB `kvs/surrealkv/cnf.rs`), so that the engine does not scan /proc for it.
  {
    name: "SURREAL_SURREALKV_VLOG_MAX_FILE_SIZE",
    defaultBytes: (ram) => (ram < 4 * GiB ? 64 : ram < 16 * GiB ? 128 : ram < 64 * GiB ? 256 : 512) * MiB,
    minBytes: 1 * MiB,
  },
];

/**
 * The machine's RAM as the engine counts it (`sysinfo`: the cgroup's memory limit when there is
 * one, else the total memory), bytes.
 */
export function engineRamBytes(): number {
  const total = totalmem();
  const limit = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  return limit !== undefined && limit > 0 && limit < total ? limit : total;
}

const UNITS: Record<string, number> = { "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: 1024 * MiB, gb: 1024 * MiB, gib: 1024 * MiB };

/**
 * Parses a byte size the way the engine does (`64MiB`, `16m`, `1048576`).
 * @returns bytes, or undefined when the engine would not parse it
 */
export function parseEngineBytes(text: string): number | undefined {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) return undefined;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * The engine memory environment for `env`: each setting's operator value when set (validated),
 * else exoclaw's default. Pure but for reading the machine's RAM when `ramBytes` is not given.
 * @param ramBytes the RAM the RAM-sized defaults follow (default {@link engineRamBytes})
 * @returns variable name to value (the operator's text (RocksDB's: as digits), or the default as digits)
 * @throws StoreError `invalid_argument` naming the variable when a value is not a byte size the
 *   engine reads, or is below the setting's minimum
 */
export function engineMemoryEnv(env: NodeJS.ProcessEnv, ramBytes: number = engineRamBytes()): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of ENGINE_MEMORY_SETTINGS) {
    const given = env[s.name];
    if (given === undefined || given.trim() === "") {
      out[s.name] = String(typeof s.defaultBytes === "function" ? s.defaultBytes(ramBytes) : s.defaultBytes);
      continue;
    }
    const bytes = s.unit === "count" ? (/^\s*\d+\s*$/.test(given) ? Number(given) : undefined) : parseEngineBytes(given);
    if (bytes === undefined && s.unit === "count") {
      throw new StoreError(
        "invalid_argument",
        `${s.name}=${JSON.stringify(given)} is not a whole number; the engine would ignore it and size this from the machine's RAM`,
      );
    }
    if (bytes === undefined) {
      throw new StoreError(
        "invalid_argument",
        `${s.name}=${JSON.stringify(given)} is not a byte size (e.g. 64MiB, 256m, 1g, 1048576); the engine would ignore it and size this from the machine's RAM`,
      );
    }
    if (bytes < s.minBytes) {
      throw new StoreError(
        "invalid_argument",
        `${s.name}=${JSON.stringify(given)} is below the minimum of ${s.unit === "count" ? s.minBytes : `${s.minBytes / MiB} MiB`}`,
      );
    }
    // RocksDB's settings in SurrealDB 3.0.2 may not take the byte grammar: digits work for both.
    out[s.name] = s.name.startsWith("SURREAL_ROCKSDB_") ? String(bytes) : given;
  }
  return out;
}

/**
 * Puts {@link engineMemoryEnv} into `process.env` (the real environment the native engine reads
 * with `getenv`), before the first embedded open; the engine reads each variable once per process,
 * so later changes have no effect. Idempotent.
 * @throws StoreError `invalid_argument` as {@link engineMemoryEnv}
 */
export function applyEngineMemoryEnv(): void {
  for (const [name, value] of Object.entries(engineMemoryEnv(process.env))) process.env[name] = value;
}
