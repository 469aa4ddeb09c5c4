/**
 * A read-only integrity check of an embedded SurrealKV store's write-ahead log, run before the
 * engine opens the directory.
 *
 * Why (issue 21, finding 1; measured with @surrealdb/node 3.0.3 / SurrealDB 3.0.2): when the
 * engine opens a directory whose WAL has a damaged record in the middle, it keeps the records
 * before the damage, **truncates the file there** and opens without any error. Every commit
 * after the damage is lost silently, and the next append lands after the cut. This check finds
 * such damage first, while the bytes after it are still on disk, so the store can refuse to open.
 *
 * Format (SurrealKV's WAL, read from its files; the LevelDB log format): files `wal/<n>.wal` in
 * order of their number; each is a sequence of 32 KiB blocks; a record is a 7-byte header —
 * CRC-32 (IEEE, big-endian) over the type byte and the payload, payload length (u16 big-endian),
 * type (1 full, 2 first, 3 middle, 4 last fragment) — then the payload; fewer than 7 bytes left
 * in a block are zero padding. A record never crosses a block boundary.
 *
 * Damage is told apart from a torn tail (a crash in the middle of writing the last record, which
 * the engine cuts off correctly and which lost nothing that was acknowledged) by what follows it:
 * a torn tail has no valid record after it and is in the last file; damage has valid records
 * after it, or is in a file that later files follow.
 */
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { BLOCK, HEADER, listNumberedFiles, scanBlockLog, type BlockLogFormat, type FragmentRole, type WalCheck, type WalDamage } from "./block-log.js";

export type { WalCheck, WalDamage } from "./block-log.js";

const FULL = 1;
const FIRST = 2;
const MIDDLE = 3;
const LAST = 4;
const ROLES: Record<number, FragmentRole> = { [FULL]: "full", [FIRST]: "first", [MIDDLE]: "middle", [LAST]: "last" };

/** Why the record at `off` of `buf` does not verify, or its payload length and type. */
function readRecord(buf: Buffer, off: number): { len: number; type: number } | string {
  const inBlock = BLOCK - (off % BLOCK);
  if (buf.length - off < HEADER) return "header cut short";
  const len = buf.readUInt16BE(off + 4);
  const type = buf[off + 6]!;
  if (type < FULL || type > LAST) return `unknown record type ${type}`;
  if (HEADER + len > inBlock) return `length ${len} runs past its 32 KiB block`;
  if (off + HEADER + len > buf.length) return `length ${len} runs past the end of the file`;
  const sum = crc32(buf.subarray(off + 6, off + HEADER + len));
  if (sum !== buf.readUInt32BE(off)) return "checksum mismatch";
  return { len, type };
}

/** The offset of the next record after `from` that verifies and starts a commit (full or first fragment). */
function findNextRecord(buf: Buffer, from: number): number | undefined {
  for (let off = from; off + HEADER <= buf.length; off++) {
    const type = buf[off + 6]!;
    if (type !== FULL && type !== FIRST) continue;
    const r = readRecord(buf, off);
    if (typeof r !== "string" && r.len > 0) return off;
  }
  return undefined;
}

/**
 * Reads every `.wal` file under `<dir>/wal` and verifies each record's checksum and framing.
 * Read only; a directory without a `wal` folder (new store) is sound. Cost: one read of the
 * WAL and a CRC-32 over it (native), before the engine's own replay of the same bytes.
 * @param dir the store directory (the path of a `surrealkv://` URL)
 * @throws the file system's error when a WAL file exists but cannot be read
 */
export async function checkSurrealKvWal(dir: string): Promise<WalCheck> {
  return scanBlockLog(await listNumberedFiles(join(dir, "wal"), ".wal"), SURREALKV_LOG);
}

/** SurrealKV's record framing (see the module comment). */
const SURREALKV_LOG: BlockLogFormat = {
  readRecord(buf, off) {
    const r = readRecord(buf, off);
    return typeof r === "string" ? r : { size: HEADER + r.len, role: ROLES[r.type]! };
  },
  findNextRecord,
  zeroTailContinues: false,
};

/**
 * Operator text for damage found by {@link checkSurrealKvWal}: the file, the byte offset, what
 * opening would lose and what to do (no secrets: paths only).
 */
export function describeWalDamage(dir: string, damage: WalDamage): string {
  const later = damage.laterFiles.length > 0 ? ` and ${damage.laterFiles.length} later WAL file(s)` : "";
  const resumes = damage.resumesAt !== undefined ? `; valid records resume at byte ${damage.resumesAt}` : "";
  return (
    `the session store's write-ahead log is damaged: ${damage.file} at byte ${damage.offset} (${damage.reason}${resumes}). ` +
    `Opening it would silently drop the ${damage.bytesAfter} bytes after that point${later}, which hold committed conversation events, so the store was not opened and nothing was changed. ` +
    `Restore ${dir} from a backup, or run "exoclaw store check --accept-loss" to keep a copy of the damaged files and open the store without the lost commits (see docs/reliability.md, "Corrupted store").`
  );
}
