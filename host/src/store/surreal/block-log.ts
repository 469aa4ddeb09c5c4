/**
 * The scan shared by the write-ahead-log checks of both embedded engines (`wal-check.ts` for
 * SurrealKV, `rocksdb-wal.ts` for RocksDB): both write the LevelDB log format — numbered files,
 * 32 KiB blocks, records with a checksummed header, a record split into first / middle / last
 * fragments when it does not fit its block. Each engine supplies how to read one record (byte
 * order, checksum, header size differ); this module walks the files and tells damage in the
 * middle of the log from a torn tail (see {@link scanBlockLog}).
 */
import { readdir } from "node:fs/promises";
import { readWholeFile } from "../../util/index.js";
import { join } from "node:path";

/** The log format's block size, bytes. */
export const BLOCK = 32 * 1024;
/** The smallest record header, bytes: fewer left in a block are zero padding. */
export const HEADER = 7;

/** A record's place in a write: whole, or the first, a middle or the last fragment of one. */
export type FragmentRole = "full" | "first" | "middle" | "last";

/** Where the WAL of a store is damaged. */
export interface WalDamage {
  /** Absolute path of the damaged WAL file. */
  file: string;
  /** Byte offset in `file` of the first record that does not verify. */
  offset: number;
  /** Why that record does not verify (checksum, length, fragment order). */
  reason: string;
  /** Byte offset of the next record that verifies after the damage (same file), if any. */
  resumesAt?: number;
  /** Bytes of `file` from `offset` to its end: what the engine would cut off. */
  bytesAfter: number;
  /** Later WAL files, all of which the engine would ignore or lose. */
  laterFiles: string[];
}

/** Result of a WAL check. */
export interface WalCheck {
  /** The WAL files read, in order. */
  files: string[];
  /** Records that verified, all files. */
  records: number;
  /** Damage in the middle of the log (commits after it would be lost); absent when the log is sound. */
  damage?: WalDamage;
  /** A torn last record (crash while writing it): the engine drops it, nothing acknowledged is lost. */
  tornTail?: { file: string; offset: number; bytes: number };
}

/** One engine's record framing. */
export interface BlockLogFormat {
  /** The record at `off` of `buf`: its size in bytes (header included) and role, or why it does not verify. */
  readRecord(buf: Buffer, off: number): { size: number; role: FragmentRole } | string;
  /** The offset of the next record after `from` that verifies and starts a write (full or first), if any. */
  findNextRecord(buf: Buffer, from: number): number | undefined;
  /**
   * Whether a file before the last that ends in zeros (space not written yet: preallocated, or
   * the process died before switching files) simply continues in the next file (RocksDB), rather
   * than counting as damage.
   */
  zeroTailContinues: boolean;
}

/**
 * The files `<number><ext>` of `dir` (absolute paths), in order of their number; none when `dir`
 * does not exist.
 * @throws the file system's error for anything but a missing directory
 */
export async function listNumberedFiles(dir: string, ext: string): Promise<string[]> {
  const names = await readdir(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return [] as string[];
    throw err;
  });
  const pattern = new RegExp(`^\\d+${ext.replace(/\./g, "\\.")}$`);
  const num = (n: string) => BigInt(n.slice(0, -ext.length));
  return names
    .filter((n) => pattern.test(n))
    .sort((a, b) => (num(a) < num(b) ? -1 : 1))
    .map((n) => join(dir, n));
}

/**
 * Reads each of `files` whole, in order, and verifies every record's framing and checksum with
 * `format`. A record that does not verify is a **torn tail** when nothing valid follows it and it
 * is in the last file (a crash while writing it: the engine cuts it off, nothing acknowledged is
 * lost); otherwise it is **damage** (valid records after it, or later files), which the engine
 * would truncate silently. A file that ends inside a fragmented record is torn in the last file,
 * damage before it. Read only.
 * @throws the file system's error when a file cannot be read
 */
export async function scanBlockLog(files: string[], format: BlockLogFormat): Promise<WalCheck> {
  const result: WalCheck = { files, records: 0 };
  for (let i = 0; i < files.length; i++) {
    const file = files[i]!;
    // Three round trips per file (the check is on an existing store's start-up path).
    const buf = await readWholeFile(file);
    let off = 0;
    let inFragments = false;
    while (off < buf.length) {
      const inBlock = BLOCK - (off % BLOCK);
      if (inBlock < HEADER) {
        off += inBlock;
        continue;
      }
      let r = format.readRecord(buf, off);
      if (typeof r !== "string") {
        if ((r.role === "middle" || r.role === "last") && !inFragments) r = `a ${r.role} fragment without its first`;
        else if ((r.role === "full" || r.role === "first") && inFragments) r = "a new record before the last fragment of the previous one";
      }
      if (typeof r === "string") {
        const resumesAt = format.findNextRecord(buf, off + 1);
        const laterFiles = files.slice(i + 1);
        if (resumesAt === undefined && laterFiles.length === 0) {
          result.tornTail = { file, offset: off, bytes: buf.length - off };
          return result;
        }
        if (format.zeroTailContinues && resumesAt === undefined && !inFragments && buf.subarray(off).every((b) => b === 0)) break;
        result.damage = { file, offset: off, reason: r, bytesAfter: buf.length - off, laterFiles, ...(resumesAt !== undefined ? { resumesAt } : {}) };
        return result;
      }
      inFragments = r.role === "first" || r.role === "middle";
      result.records++;
      off += r.size;
    }
    if (inFragments) {
      if (i === files.length - 1) result.tornTail = { file, offset: buf.length, bytes: 0 };
      else
        result.damage = {
          file,
          offset: buf.length,
          reason: "the file ends before the last fragment of its last record",
          bytesAfter: 0,
          laterFiles: files.slice(i + 1),
        };
      return result;
    }
  }
  return result;
}
