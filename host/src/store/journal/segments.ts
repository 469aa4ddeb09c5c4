/**
 * exoclaw's write-ahead journal on disk: append-only segment files with group commit.
 *
 * Layout: a directory (mode 0700) of segment files `<first record number, 16 digits>.jnl`
 * (mode 0600). A segment is a sequence of records, each framed as
 * `[payload length: u32 LE][CRC-32 of the payload: u32 LE][payload]`; a record's number (its
 * "position") is the segment's first number plus its index in the file.
 *
 * **Group commit**: one write is in flight at a time; records appended while it runs go together
 * into the next one, so concurrent appenders share one fdatasync without any timer. A record's
 * promise resolves only after its bytes are on disk: segments are opened with `O_DSYNC`, so each
 * write returns once its data (and the file size) are durable, as `write` + `fdatasync` would,
 * in one system call and one trip through libuv's thread pool instead of two (measured: less CPU
 * per group, mostly the main thread's wake-ups; docs/architecture.md, "Store"). Where the
 * platform has no `O_DSYNC` (Windows), each write is followed by `fdatasync`.
 *
 * **Failures**: a failed write or fdatasync (a full disk, an I/O error) cuts the file back to
 * where the failed write began (so no record of it survives to be replayed) and makes the journal
 * refuse every later write: after a failed fsync the page cache cannot be trusted
 * (PostgreSQL's "fsyncgate"); the process restarts and the open verifies the files.
 *
 * **Zero-filled segments**: once the segment being written is a quarter full, the next one is
 * prepared aside (`spare.jnl.tmp`: `segmentBytes` of zeros written and fdatasync'ed off the write
 * path) and renamed into place at the rotation (for a segment that is not zero-filled, a
 * process's first, as soon as the spare is ready). Writes into it overwrite blocks the file system
 * already allocated, inside the file's size, so an `O_DSYNC` write only has its data to make
 * durable: no inode or extent change, no file-system journal commit, which an appending write
 * needs every time (ext4 on this VM, 400-byte writes: p50 0.19 against 0.26 ms, p90 0.26
 * against 1.2-4.7 ms while other processes use the disk; docs/architecture.md, "Zero-filled
 * journal segments"). A clean `close` cuts the zeros off the last segment. Without a spare
 * ready (a process's first quarter segment, a spare that failed), a segment is written by
 * appending as before.
 *
 * **Open**: every segment is read and each record's CRC checked. Records end at the file's end
 * or at a zero length field: a record never has an empty payload ({@link frameRecord} refuses
 * one), so a header of zeros is where writing stopped in a zero-filled segment, and zeros from
 * there to the file's end are a clean end in any segment. A bad or short record at the end of the
 * last segment (anything but zeros after the last good record) is a torn tail (a crash
 * mid-write, never acknowledged): the file is cut there. A bad record anywhere else is damage:
 * StoreCorruptError.
 */
import { constants } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, chmod, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { StoreCorruptError } from "../errors.js";

/** Bytes of a record's frame header (length + CRC-32). */
const HEADER = 8;
/** Bytes a record's frame adds to its payload. */
export const RECORD_HEADER_BYTES = HEADER;
/** A record larger than this is refused (and a header claiming more is damage). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;
const SEGMENT_NAME = /^(\d{16})\.jnl$/;
/** The next segment while it is zero-filled (not a segment name: never read as one; removed at open). */
export const SPARE_FILE = "spare.jnl.tmp";

/** A record read back at open. */
export interface JournalRecord {
  /** The record's position (record number, from 1). */
  position: number;
  payload: Buffer;
}

/** Options of {@link openJournalFiles}. */
export interface JournalFilesOptions {
  /** The journal's directory (created 0700). */
  dir: string;
  /** Start a new segment once the current one holds this many bytes; default 1 MiB. */
  segmentBytes?: number;
  /** Told about a torn tail cut at open. */
  logger?: { info(message: string): void };
}

/** The open journal: records read at open, and the writer. */
export interface JournalFiles {
  /** Every record found at open, in order (torn tail removed). */
  readonly recovered: JournalRecord[];
  /**
   * Appends one record; resolves with its position once it is fdatasync'ed (group commit).
   * @throws Error the write/fsync failure (errno in `code`, e.g. ENOSPC), for this and every later append
   */
  append(payload: Buffer): Promise<number>;
  /** {@link append} of a record already framed by {@link frameRecord}. */
  appendFramed(frame: Buffer): Promise<number>;
  /**
   * {@link append} of a record given as text (written as UTF-8), framed when its group is written:
   * the group's records are framed straight into the one buffer written, with no buffer per record
   * and no copy of them into the group's. `byteLength` is `Buffer.byteLength(text, "utf8")` (the
   * caller has it: {@link checkRecordLength}).
   * @throws Error as {@link append}
   */
  appendText(text: string, byteLength: number): Promise<number>;
  /** Deletes the segments whose every record is at or before `position` (never the one being written). */
  release(position: number): Promise<void>;
  /** Position of the last record written (0 for none). */
  readonly lastPosition: number;
  /** Closes the file after the write in flight; later appends fail. */
  close(): Promise<void>;
  /**
   * Starts a new segment if the current one holds records (call with no append in flight), so
   * `release` can then delete every record written so far.
   */
  rotate(): Promise<void>;
  /** After `close`: deletes every segment (the caller knows each record is projected). */
  discard(): Promise<void>;
}

const segmentName = (first: number) => `${String(first).padStart(16, "0")}.jnl`;

/**
 * Frames a payload (a string is written as UTF-8 straight into the frame): header + payload.
 * @throws Error when the payload is empty (a zero length field marks where a zero-filled
 *   segment's records end) or larger than {@link MAX_RECORD_BYTES}
 */
export function frameRecord(payload: Buffer | string): Buffer {
  const length = typeof payload === "string" ? Buffer.byteLength(payload, "utf8") : payload.length;
  checkRecordLength(length);
  const out = Buffer.allocUnsafe(HEADER + length);
  out.writeUInt32LE(length, 0);
  if (typeof payload === "string") out.write(payload, HEADER, "utf8");
  else payload.copy(out, HEADER);
  out.writeUInt32LE(crc32(out.subarray(HEADER)), 4);
  return out;
}

/**
 * Checks a record's payload size (bytes). @throws Error when it is 0 (a zero length field marks
 * where a zero-filled segment's records end) or larger than {@link MAX_RECORD_BYTES}
 */
export function checkRecordLength(length: number): void {
  if (length === 0) throw new Error("a journal record may not be empty");
  if (length > MAX_RECORD_BYTES) throw new Error(`a journal record may hold at most ${MAX_RECORD_BYTES} bytes`);
}

/** A record waiting for its group's write: framed already (`frame`), or text framed at the write. */
interface Queued {
  frame: Buffer | undefined;
  text: string | undefined;
  /** Payload bytes of `text`. */
  length: number;
  resolve(position: number): void;
  reject(err: unknown): void;
}

/**
 * The bytes of a group's write: each record framed as {@link frameRecord} does (the same bytes),
 * texts encoded straight into the one buffer.
 */
function frameGroup(group: readonly Queued[]): Buffer {
  if (group.length === 1 && group[0]!.frame) return group[0]!.frame;
  let total = 0;
  for (const q of group) total += q.frame ? q.frame.length : HEADER + q.length;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  for (const q of group) {
    if (q.frame) {
      q.frame.copy(out, off);
      off += q.frame.length;
      continue;
    }
    const start = off + HEADER;
    const written = out.write(q.text!, start, q.length, "utf8");
    // A wrong length would misframe every later record: refused (the group fails, nothing is written).
    if (written !== q.length) throw new Error(`a journal record's length ${q.length} is not its text's UTF-8 length`);
    out.writeUInt32LE(q.length, off);
    out.writeUInt32LE(crc32(out.subarray(start, start + q.length)), off + 4);
    off = start + q.length;
  }
  return out;
}

/**
 * Reads one segment's records. Returns them and the byte offset where valid data ends (the
 * file's length when it is intact).
 */
function parseSegment(bytes: Buffer, first: number): { records: JournalRecord[]; end: number } {
  const records: JournalRecord[] = [];
  let off = 0;
  while (off < bytes.length) {
    if (bytes.length - off < HEADER) break;
    const len = bytes.readUInt32LE(off);
    const sum = bytes.readUInt32LE(off + 4);
    // No record is empty: a zero length is where writing stopped (a zero-filled segment), or damage.
    if (len === 0) break;
    if (len > MAX_RECORD_BYTES || off + HEADER + len > bytes.length) break;
    const payload = bytes.subarray(off + HEADER, off + HEADER + len);
    if (crc32(payload) !== sum) break;
    records.push({ position: first + records.length, payload });
    off += HEADER + len;
  }
  return { records, end: off };
}

/** Whether `bytes` from `from` to the end are all zeros (a zero-filled segment's unwritten part). */
function zerosFrom(bytes: Buffer, from: number): boolean {
  const rest = bytes.subarray(from);
  return rest.equals(Buffer.alloc(rest.length));
}

/** fsyncs a directory (so a created or removed file's entry is durable). */
async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Opens (creating) the journal directory, verifies every segment, cuts a torn tail and returns
 * the writer, positioned after the last record.
 * @throws StoreCorruptError when a segment other than the last is damaged; Error from the file system
 */
export async function openJournalFiles(options: JournalFilesOptions): Promise<JournalFiles> {
  const { dir } = options;
  const segmentBytes = options.segmentBytes ?? 1024 * 1024;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // Independent: one round trip through the thread pool instead of two (start-up's critical path).
  const [, listed] = await Promise.all([chmod(dir, 0o700), readdir(dir)]);
  const names = listed.filter((n) => SEGMENT_NAME.test(n)).sort();
  const segments: { first: number; name: string; count: number }[] = [];
  const recovered: JournalRecord[] = [];
  let next = 1;
  for (const [i, name] of names.entries()) {
    const first = Number(SEGMENT_NAME.exec(name)![1]);
    const path = join(dir, name);
    const bytes = await readFile(path);
    const { records, end } = parseSegment(bytes, first);
    if (end < bytes.length && !zerosFrom(bytes, end)) {
      if (i < names.length - 1) {
        throw new StoreCorruptError(
          path,
          end,
          `the store's journal ${path} is damaged at byte ${end} (a record does not verify, and later segments follow); nothing was opened. See docs/reliability.md ("Corrupted store")`,
        );
      }
      options.logger?.info(`the store's journal ends in a torn record (${path}, byte ${end}): a write cut short by a crash, never acknowledged; cut off`);
      const fh = await open(path, "r+");
      try {
        await fh.truncate(end);
        await fh.datasync();
      } finally {
        await fh.close();
      }
    }
    recovered.push(...records);
    segments.push({ first, name, count: records.length });
    next = first + records.length;
  }

  // Always write into a fresh segment: the last one may have been cut, and a new file keeps the
  // rule "only the newest segment can have a torn tail" simple. An empty last segment is reused.
  if (segments.length > 0 && segments[segments.length - 1]!.count === 0) segments.pop();
  // The new segment's directory entry is made durable in the background: the open (the store's
  // share of the gateway's ready time) does not wait for the directory's fsync (tens of ms on a
  // busy disk); the first write waits for it, so no record is acknowledged in a file whose entry
  // could be lost.
  let current = await open(join(dir, segmentName(next)), SEGMENT_FLAGS, 0o600);
  let dirSync: Promise<void> | undefined = syncDir(dir);
  dirSync.catch(() => {});
  segments.push({ first: next, name: segmentName(next), count: 0 });
  let size = 0;
  let lastPosition = next - 1;
  let failure: Error | undefined;
  let closed = false;
  let queue: Queued[] = [];
  let flushing: Promise<void> | undefined;
  // The zero-filled next segment (see the module comment): a spare left by an earlier process may
  // be half written, so it is removed first (in the background: not part of the open's time).
  const sparePath = join(dir, SPARE_FILE);
  let spareGone: Promise<void> = rm(sparePath, { force: true }).catch(() => {});
  /** The spare being prepared or ready: resolves true once it holds `segmentBytes` durable zeros. */
  let spare: Promise<boolean> | undefined;
  let spareReady = false;
  /** The current segment file's zero-filled length (0: written by appending); a clean close cuts it to `size`. */
  let filled = 0;

  const prepareSpare = (): void => {
    if (spare || closed || failure) return;
    spare = (async () => {
      await spareGone;
      const fh = await open(sparePath, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
      try {
        await writeAll(fh, Buffer.alloc(segmentBytes), 0);
        await fh.datasync();
      } finally {
        await fh.close();
      }
      return true;
    })().then(
      (ok) => (spareReady = ok),
      // No spare (e.g. the disk is full): its part is removed, and the next segment is created
      // empty and written by appending, as without one.
      () =>
        rm(sparePath, { force: true }).then(
          () => false,
          () => false,
        ),
    );
  };

  /** Opens the segment starting at record `first`: the spare renamed into place when it is ready, else a new empty file. */
  const nextSegment = async (first: number): Promise<FileHandle> => {
    const path = join(dir, segmentName(first));
    if (spareReady) {
      spareReady = false;
      spare = undefined;
      spareGone = Promise.resolve();
      let fh: FileHandle | undefined;
      try {
        await rename(sparePath, path);
        fh = await open(path, SEGMENT_REUSE_FLAGS);
        // The entry's rename is durable before any record is written into it.
        await syncDir(dir);
        filled = segmentBytes;
        return fh;
      } catch {
        // Made as without a spare below (O_TRUNC empties a renamed file).
        await fh?.close().catch(() => {});
      }
    }
    filled = 0;
    return createSegment(dir, first);
  };

  // `flushing` is cleared in the same synchronous step that finds the queue empty, so an append
  // made after it always starts a new flush.
  const flush = async (): Promise<void> => {
    while (queue.length > 0) {
      const group = queue;
      queue = [];
      if (failure) {
        for (const q of group) q.reject(failure);
        continue;
      }
      try {
        // A segment written by appending (a process's first, or one made without a spare) is left
        // as soon as a spare is ready, so the zero-filled writes start early, not a segment later.
        if (size >= segmentBytes || (filled === 0 && spareReady && size > 0)) {
          await current.close();
          current = await nextSegment(lastPosition + 1);
          segments.push({ first: lastPosition + 1, name: segmentName(lastPosition + 1), count: 0 });
          size = 0;
        }
        if (dirSync) {
          await dirSync;
          dirSync = undefined;
        }
        const bytes = frameGroup(group);
        const start = size;
        try {
          await writeAll(current, bytes, start);
          if (!O_DSYNC) await current.datasync();
        } catch (err) {
          // Nothing of this group may be replayed later: cut the file back (needs no space).
          await current.truncate(start).catch(() => {});
          throw err;
        }
        size += bytes.length;
        // Not at a segment's first write: a process that writes little (and the disk-full tests)
        // never makes one, and preallocated space lets appends succeed on a full disk (durably;
        // the projection's own writes then fail and stop the store, docs/reliability.md).
        if (size >= segmentBytes / 4) prepareSpare();
        const first = lastPosition + 1;
        lastPosition += group.length;
        segments[segments.length - 1]!.count += group.length;
        group.forEach((q, i) => q.resolve(first + i));
      } catch (err) {
        failure = err as Error;
        for (const q of group) q.reject(err);
      }
    }
    flushing = undefined;
  };

  const enqueue = (frame: Buffer | undefined, text: string | undefined, length: number): Promise<number> => {
    if (closed) return Promise.reject(new Error("the journal is closed"));
    if (failure) return Promise.reject(failure);
    return new Promise<number>((resolve, reject) => {
      queue.push({ frame, text, length, resolve, reject });
      flushing ??= flush();
    });
  };
  const appendFramed = (frame: Buffer): Promise<number> => enqueue(frame, undefined, frame.length - HEADER);

  return {
    recovered,
    get lastPosition() {
      return lastPosition;
    },
    append(payload: Buffer): Promise<number> {
      let bytes: Buffer;
      try {
        bytes = frameRecord(payload);
      } catch (err) {
        return Promise.reject(err);
      }
      return appendFramed(bytes);
    },
    appendFramed,
    appendText(text: string, byteLength: number): Promise<number> {
      try {
        checkRecordLength(byteLength);
      } catch (err) {
        return Promise.reject(err);
      }
      return enqueue(undefined, text, byteLength);
    },
    async release(position: number): Promise<void> {
      let removed = false;
      while (segments.length > 1 && segments[0]!.first + segments[0]!.count - 1 <= position) {
        const seg = segments.shift()!;
        await rm(join(dir, seg.name), { force: true });
        removed = true;
      }
      if (removed) await syncDir(dir).catch(() => {});
    },
    async rotate(): Promise<void> {
      await flushing;
      if (closed || failure || size === 0) return;
      await current.close();
      // Empty, not the spare, and the spare removed: the caller (retention) deletes every segment
      // written so far and leaves nothing else in the directory.
      await spare;
      spare = undefined;
      spareReady = false;
      await rm(sparePath, { force: true });
      filled = 0;
      current = await createSegment(dir, lastPosition + 1);
      segments.push({ first: lastPosition + 1, name: segmentName(lastPosition + 1), count: 0 });
      size = 0;
    },
    async discard(): Promise<void> {
      if (!closed) throw new Error("discard needs a closed journal");
      for (const seg of segments.splice(0)) await rm(join(dir, seg.name), { force: true });
      await syncDir(dir);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await flushing;
      await dirSync?.catch(() => {});
      // The zeros after the last record are not kept (a crash leaves them: the open reads them as the end).
      if (filled > size && !failure) await current.truncate(size).catch(() => {});
      await current.close().catch(() => {});
      await spare;
      await rm(sparePath, { force: true }).catch(() => {});
    },
  };
}

/** `O_DSYNC` where the platform has it: every write to a segment is durable when it returns. */
const O_DSYNC: number | undefined = (constants as { O_DSYNC?: number }).O_DSYNC;

/** How segments are opened for writing. */
const SEGMENT_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | (O_DSYNC ?? 0);
/** How a zero-filled spare renamed into a segment is opened: its zeros are kept (no `O_TRUNC`). */
const SEGMENT_REUSE_FLAGS = constants.O_WRONLY | (O_DSYNC ?? 0);

async function createSegment(dir: string, first: number): Promise<FileHandle> {
  const fh = await open(join(dir, segmentName(first)), SEGMENT_FLAGS, 0o600);
  await syncDir(dir);
  return fh;
}

async function writeAll(fh: FileHandle, bytes: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < bytes.length) {
    const { bytesWritten } = await fh.write(bytes, done, bytes.length - done, position + done);
    done += bytesWritten;
  }
}
