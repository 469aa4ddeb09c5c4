/**
 * A read-only integrity check of an embedded RocksDB store's write-ahead log (`rocksdb://`), run
 * before the engine opens the directory: the RocksDB counterpart of `wal-check.ts`.
 *
 * Why: SurrealDB 3.0.2 opens RocksDB with its default WAL recovery mode (point in time): a
 * damaged record in the middle of a WAL ends the replay there, the store opens without an error
 * and the commits after the damage are gone (measured: see tests/store/rocksdb-wal.test.ts). The
 * journal in front of the engine (`journal/`) does not cover them: its segments are deleted once
 * projected. RocksDB's other files (SSTables, blob files, MANIFEST) carry block checksums the
 * engine verifies on every read or at open, so damage there fails loudly instead.
 *
 * Format (RocksDB `db/log_format.h`, `db/log_writer.cc`; the LevelDB log format in little
 * endian): files `<n>.log` in the store directory, in order of their number; each a sequence of
 * 32 KiB blocks; a record is a header — masked CRC-32C (u32 little-endian) over the type byte,
 * for recyclable records the log number, and the payload; payload length (u16 little-endian);
 * type (1 full, 2 first, 3 middle, 4 last fragment; 5-8 the same in the recyclable format, with
 * a 4-byte log number after the type, header 11 bytes; 9-11 metadata records (compression,
 * timestamp sizes); 128 and up records a reader may skip) — then the payload. Fewer bytes than a
 * header left in a block are zero padding; a zero type is space not written yet. Torn tail vs
 * damage as in `wal-check.ts`: damage has a valid record after it, or a later WAL file.
 */
import { BLOCK, HEADER, listNumberedFiles, scanBlockLog, type BlockLogFormat, type FragmentRole, type WalCheck } from "./block-log.js";

const RECYCLABLE_HEADER = 11;

/**
 * CRC-32C (Castagnoli) tables for slicing by 8, reflected polynomial 0x82F63B78: `TABLES[0]` is
 * the byte-at-a-time table, `TABLES[k]` advances a byte's contribution by k more bytes.
 */
const TABLES = (() => {
  const t = new Uint32Array(8 * 256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    t[i] = c >>> 0;
  }
  for (let i = 0; i < 256; i++) {
    for (let k = 1; k < 8; k++) t[k * 256 + i] = (t[(k - 1) * 256 + i]! >>> 8) ^ t[t[(k - 1) * 256 + i]! & 0xff]!;
  }
  return t;
})();

/**
 * CRC-32C of `buf`. Eight bytes per step (slicing by 8): the WAL check runs it over the whole
 * WAL before the store is ready, up to 2 x 16 MiB after a long run; ~3x the byte-at-a-time
 * loop's speed (docs/architecture.md, "Start-up on an existing store").
 */
export function crc32c(buf: Uint8Array): number {
  const t = TABLES;
  let c = 0xffffffff;
  let i = 0;
  const end8 = buf.length - (buf.length % 8);
  for (; i < end8; i += 8) {
    const lo = (c ^ (buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24))) >>> 0;
    c =
      t[7 * 256 + (lo & 0xff)]! ^
      t[6 * 256 + ((lo >>> 8) & 0xff)]! ^
      t[5 * 256 + ((lo >>> 16) & 0xff)]! ^
      t[4 * 256 + (lo >>> 24)]! ^
      t[3 * 256 + buf[i + 4]!]! ^
      t[2 * 256 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
  }
  for (; i < buf.length; i++) c = t[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** RocksDB's stored form of a CRC (`util/crc32c.h` `Mask`): rotated right 15 bits plus a constant. */
export function maskCrc(crc: number): number {
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** The fragment role of a record type: whole (1, 5, metadata, skippable), first, middle or last. */
function role(type: number): FragmentRole | undefined {
  if (type === 1 || type === 5 || (type >= 9 && type <= 11) || type >= 128) return "full";
  if (type === 2 || type === 6) return "first";
  if (type === 3 || type === 7) return "middle";
  if (type === 4 || type === 8) return "last";
  return undefined;
}

/** Why the record at `off` does not verify, or its total size and role. */
function readRecord(buf: Buffer, off: number): { size: number; role: FragmentRole } | string {
  const inBlock = BLOCK - (off % BLOCK);
  if (buf.length - off < HEADER) return "header cut short";
  const type = buf[off + 6]!;
  const r = role(type);
  if (r === undefined) return type === 0 ? "unwritten space (zero type)" : `unknown record type ${type}`;
  const header = type >= 5 && type <= 8 ? RECYCLABLE_HEADER : HEADER;
  const len = buf.readUInt16LE(off + 4);
  if (header + len > inBlock) return `length ${len} runs past its 32 KiB block`;
  if (off + header + len > buf.length) return `length ${len} runs past the end of the file`;
  if (maskCrc(crc32c(buf.subarray(off + 6, off + header + len))) !== buf.readUInt32LE(off)) return "checksum mismatch";
  return { size: header + len, role: r };
}

/** The offset of the next record after `from` that verifies and starts a write (full or first), if any. */
function findNextRecord(buf: Buffer, from: number): number | undefined {
  for (let off = from; off + HEADER <= buf.length; off++) {
    const r = role(buf[off + 6]!);
    if (r !== "full" && r !== "first") continue;
    const rec = readRecord(buf, off);
    if (typeof rec !== "string" && rec.size > HEADER) return off;
  }
  return undefined;
}

/**
 * Reads every `<n>.log` file in `dir` and verifies each record's checksum and framing. Read
 * only; a directory without WAL files (new store, or everything flushed) is sound. Cost: one read
 * of the WAL and a CRC-32C over it in JS (~100-200 MB/s), before the engine's own replay; the
 * WAL is bounded by the memtable size (`memory.ts`: 2 x 16 MiB by default).
 * @param dir the store directory (the path of a `rocksdb://` URL)
 * @throws the file system's error when a WAL file exists but cannot be read
 */
export async function checkRocksDbWal(dir: string): Promise<WalCheck> {
  return scanBlockLog(await listNumberedFiles(dir, ".log"), ROCKSDB_LOG);
}

/** RocksDB's record framing (see the module comment). */
const ROCKSDB_LOG: BlockLogFormat = { readRecord, findNextRecord, zeroTailContinues: true };
