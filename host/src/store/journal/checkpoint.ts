/**
 * The journal's checkpoint: what the journal must know of the embedded engine's content to take
 * appends before the engine has opened, written at a clean close and trusted at the next open
 * only if the engine's files did not change since (docs/architecture.md, "Start-up").
 *
 * Written by `close()` when everything journaled was projected (the journal is then empty), after
 * the engine's last write: the Bloom filter of every stored session key and dedupe key, the
 * open turns (`pendingTurns`) and the owed replies (`pendingReplies`), and a fingerprint of the
 * engine's directory (every file and directory under it but `journal/`: path, size, mtime in ns,
 * inode). Any later open of the engine changes that fingerprint: RocksDB starts a new WAL file,
 * `OPTIONS-<n>` and info `LOG` at every open, SurrealKV writes its manifest and WAL; appending
 * changes a WAL file's size and mtime. So an engine written after the checkpoint (another
 * exoclaw version, `journal=off`, a restored backup) is detected before anything is trusted.
 *
 * The file is read and deleted at open, before the engine opens: a checkpoint is trusted at
 * most once, and a process that crashes after its open never leaves one behind that describes
 * an engine it then wrote (the fingerprint would refuse it too).
 *
 * Format: `EXOCKPT1`, header length (u32 LE), header JSON (fingerprint, filter geometry, the
 * pending lists), the filter's bits, CRC-32 of everything before (u32 LE). Written to a
 * temporary file, fsync'ed and renamed.
 */
import { createHash } from "node:crypto";
import { open, readdir, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import type { SessionEventOf } from "../types.js";
import { BloomFilter } from "./bloom.js";
import { errorMessage, readWholeFile } from "../../util/index.js";

/** The checkpoint's file name inside the journal directory. */
export const CHECKPOINT_FILE = "checkpoint";
const MAGIC = Buffer.from("EXOCKPT1", "latin1");
/** Pending lists larger than this (JSON bytes) are not checkpointed: the next open waits for the engine. */
const MAX_HEADER_BYTES = 8 * 1024 * 1024;

/** What the journal knows of the engine's content without opening it. */
export interface EngineSnapshot {
  /**
   * Every session key (`s:` prefixed) and dedupe key (`pm:`/`idem:` prefixed) the engine holds;
   * `mightHave` false means certainly absent.
   */
  filter: BloomFilter;
  /** The engine's `pendingTurns()` answer. */
  pendingTurns: SessionEventOf<"message_received">[];
  /** The engine's `pendingReplies()` answer. */
  pendingReplies: SessionEventOf<"message_received">[];
  /** The engine directory's fingerprint it was checked against (a snapshot read from a checkpoint). */
  fingerprint?: string;
}

interface Header {
  fingerprint: string;
  log2Bits: number;
  hashes: number;
  pendingTurns: SessionEventOf<"message_received">[];
  pendingReplies: SessionEventOf<"message_received">[];
}

/**
 * A digest of every entry under `engineDir` but its `journal/` directory: relative path, type,
 * size, mtime (ns) and inode, sorted. Reads directory listings and `stat`s only.
 * @throws the file system's error when the directory cannot be listed
 */
export async function engineFingerprint(engineDir: string, journalName = "journal"): Promise<string> {
  const lines: string[] = [];
  // The `stat`s of a directory run concurrently (and its subdirectories' walks): one thread-pool
  // round trip per level instead of one per entry. A RocksDB directory holds ~10 files plus one
  // `LOG.old.*` per open; one at a time, they were most of the checkpoint's share of an existing
  // store's start (docs/architecture.md, "Start-up on an existing store").
  const walk = async (dir: string, rel: string): Promise<void> => {
    const entries = await readdir(dir, { withFileTypes: true });
    await Promise.all(
      entries.map(async (e) => {
        if (rel === "" && e.name === journalName) return;
        const path = join(dir, e.name);
        const relPath = rel === "" ? e.name : `${rel}/${e.name}`;
        const st = await stat(path, { bigint: true }).catch(() => undefined);
        if (st === undefined) {
          lines.push(`${relPath} gone`);
          return;
        }
        lines.push(`${relPath} ${e.isDirectory() ? "d" : "f"} ${st.size} ${st.mtimeNs} ${st.ino}`);
        if (e.isDirectory()) await walk(path, relPath);
      }),
    );
  };
  await walk(engineDir, "");
  lines.sort();
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

/**
 * Writes the checkpoint into `journalDir` for the engine in `engineDir`, which must be closed
 * for writes by this process (nothing may write it after this call). Durable when it resolves.
 * With `expectFingerprint` (a snapshot written again by a process that never opened the engine),
 * nothing is written when the engine's files changed since that fingerprint was taken.
 * @returns false when it was not written (pending lists too large, or the files changed)
 * @throws the file system's error
 */
export async function writeCheckpoint(journalDir: string, engineDir: string, snapshot: EngineSnapshot, expectFingerprint?: string): Promise<boolean> {
  const bits = snapshot.filter.bytes();
  const fingerprint = await engineFingerprint(engineDir);
  if (expectFingerprint !== undefined && fingerprint !== expectFingerprint) return false;
  const header: Header = {
    fingerprint,
    log2Bits: Math.log2(bits.length * 8),
    hashes: snapshot.filter.hashCount,
    pendingTurns: snapshot.pendingTurns,
    pendingReplies: snapshot.pendingReplies,
  };
  const json = Buffer.from(JSON.stringify(header), "utf8");
  if (json.length > MAX_HEADER_BYTES) return false;
  const len = Buffer.alloc(4);
  len.writeUInt32LE(json.length);
  const body = Buffer.concat([MAGIC, len, json, bits]);
  const sum = Buffer.alloc(4);
  sum.writeUInt32LE(crc32(body) >>> 0);
  const path = join(journalDir, CHECKPOINT_FILE);
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(Buffer.concat([body, sum]));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const d = await open(journalDir, "r");
  try {
    await d.sync();
  } finally {
    await d.close();
  }
  return true;
}

/**
 * Reads and deletes the checkpoint of `journalDir`, and returns what it says of the engine in
 * `engineDir` if it still describes it (the engine's files unchanged since it was written), else
 * undefined (none, damaged, or stale: `logger` hears why). Call before the engine opens.
 */
export async function takeCheckpoint(
  journalDir: string,
  engineDir: string,
  logger?: { info(message: string): void; warn(message: string): void },
): Promise<EngineSnapshot | undefined> {
  const path = join(journalDir, CHECKPOINT_FILE);
  // The file's read and the engine directory's fingerprint are independent: run together (the
  // fingerprint of a store without a checkpoint is not used; it costs a listing and its stats).
  const fingerprint = engineFingerprint(engineDir);
  fingerprint.catch(() => {});
  let buf: Buffer;
  try {
    buf = await readWholeFile(path);
  } catch {
    return undefined;
  }
  // Trusted at most once, whatever follows (awaited below, before the open goes on).
  const removed = unlink(path).catch(() => {});
  try {
    if (buf.length < MAGIC.length + 8 || !buf.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error("not a checkpoint");
    const body = buf.subarray(0, buf.length - 4);
    if (crc32(body) >>> 0 !== buf.readUInt32LE(buf.length - 4)) throw new Error("its checksum does not verify");
    const len = body.readUInt32LE(MAGIC.length);
    const header = JSON.parse(body.subarray(MAGIC.length + 4, MAGIC.length + 4 + len).toString("utf8")) as Header;
    // A view, not a copy: the filter (1 MiB by default) owns the read's buffer from here on.
    const bits = body.subarray(MAGIC.length + 4 + len);
    const filter = new BloomFilter(header.log2Bits, header.hashes, bits);
    const now = await fingerprint;
    await removed;
    if (now !== header.fingerprint) {
      logger?.info(
        "the store's checkpoint does not describe its engine any more (the engine was opened or written after it): the store opens the engine before it serves",
      );
      return undefined;
    }
    return { filter, pendingTurns: header.pendingTurns, pendingReplies: header.pendingReplies, fingerprint: now };
  } catch (err) {
    await removed;
    logger?.warn(`the store's checkpoint ${path} is not usable (${errorMessage(err)}): the store opens the engine before it serves`);
    return undefined;
  }
}
