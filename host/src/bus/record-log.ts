/**
 * An append-only file of MessagePack records, fsync'd with group commit. Used by the disk spool
 * and the in-process dead-letter store.
 *
 * Frame: `u32 length (big-endian) | u32 CRC-32 of the payload | payload (standard MessagePack)`.
 * On open, a torn or corrupt tail (a crash in the middle of a write) is cut off at the last good
 * frame; everything before it is kept.
 */
import { mkdir, open, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import { crc32 } from "node:zlib";
import { decodePayload, encodePayload } from "./codec.js";

const HEADER = 8;
/** Largest record accepted (a frame length beyond it is treated as corruption). */
export const MAX_RECORD_BYTES = 64 * 1024 * 1024;

/** One decoded record and the file offset just past it. */
export interface LogRecord {
  value: unknown;
  /** Offset of the next frame. */
  end: number;
}

interface PendingAppend {
  frame: Buffer;
  resolve: (end: number) => void;
  reject: (error: unknown) => void;
}

function frame(value: unknown): Buffer {
  const payload = encodePayload(value);
  if (payload.length > MAX_RECORD_BYTES) throw new RangeError(`record of ${payload.length} bytes exceeds ${MAX_RECORD_BYTES}`);
  const buf = Buffer.allocUnsafe(HEADER + payload.length);
  buf.writeUInt32BE(payload.length, 0);
  buf.writeUInt32BE(crc32(payload), 4);
  buf.set(payload, HEADER);
  return buf;
}

/** Parses complete, valid frames from `buf` (which starts at file offset `base`). */
function parseFrames(buf: Buffer, base: number, limit = Infinity): { records: LogRecord[]; consumed: number; corrupt: boolean } {
  const records: LogRecord[] = [];
  let pos = 0;
  while (records.length < limit && pos + HEADER <= buf.length) {
    const len = buf.readUInt32BE(pos);
    if (len > MAX_RECORD_BYTES) return { records, consumed: pos, corrupt: true };
    if (pos + HEADER + len > buf.length) break;
    const payload = buf.subarray(pos + HEADER, pos + HEADER + len);
    if (crc32(payload) !== buf.readUInt32BE(pos + 4)) return { records, consumed: pos, corrupt: true };
    let value: unknown;
    try {
      value = decodePayload(payload);
    } catch {
      return { records, consumed: pos, corrupt: true };
    }
    pos += HEADER + len;
    records.push({ value, end: base + pos });
  }
  return { records, consumed: pos, corrupt: false };
}

/** See the module comment. Not safe for two processes at once (the state dir is per process). */
export class RecordLog {
  private queue: PendingAppend[] = [];
  private flushing: Promise<void> | undefined;
  private closed = false;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private sizeBytes: number,
    private readonly durable: boolean,
  ) {}

  /**
   * Opens (creating it and its directory) and repairs a torn tail.
   * @param durable fsync every group commit (default true)
   */
  static async open(path: string, durable = true): Promise<{ log: RecordLog; records: LogRecord[] }> {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(path, "a+");
    const { size } = await fh.stat();
    const buf = Buffer.allocUnsafe(size);
    if (size > 0) await fh.read(buf, 0, size, 0);
    const { records, consumed } = parseFrames(buf, 0);
    if (consumed < size) {
      await fh.truncate(consumed);
      await fh.sync();
    }
    return { log: new RecordLog(path, fh, consumed, durable), records };
  }

  /** Bytes in the file (complete frames, including appends not yet resolved). */
  get size(): number {
    return this.sizeBytes;
  }

  /**
   * Appends one record; resolves with the offset just past it once it is on disk (fsync'd).
   * Appends made in the same tick share one write and one fsync.
   * @throws Error when the log is closed or the write fails
   */
  append(value: unknown): Promise<number> {
    if (this.closed) return Promise.reject(new Error(`record log ${this.path} is closed`));
    let buf: Buffer;
    try {
      buf = frame(value);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<number>((resolve, reject) => {
      this.queue.push({ frame: buf, resolve, reject });
      if (!this.flushing) this.flushing = this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    // let the rest of this tick's appends join the batch
    await new Promise<void>((r) => setImmediate(r));
    while (this.queue.length > 0) {
      const batch = this.queue.splice(0);
      const data = Buffer.concat(batch.map((p) => p.frame));
      try {
        await this.fh.write(data, 0, data.length, null);
        if (this.durable) await this.fh.datasync();
        let end = this.sizeBytes;
        for (const p of batch) {
          end += p.frame.length;
          p.resolve(end);
        }
        this.sizeBytes = end;
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.flushing = undefined;
  }

  /** Waits for every pending append. */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  /** Reads up to `limit` records starting at `offset` (which must be a frame boundary). */
  async readFrom(offset: number, limit = 1000, maxBytes = 4 * 1024 * 1024): Promise<LogRecord[]> {
    const size = this.sizeBytes;
    if (offset >= size) return [];
    let want = Math.min(size - offset, maxBytes);
    for (;;) {
      const buf = Buffer.allocUnsafe(want);
      const { bytesRead } = await this.fh.read(buf, 0, want, offset);
      const { records } = parseFrames(buf.subarray(0, bytesRead), offset, limit);
      // a single record larger than maxBytes: read more
      if (records.length === 0 && want < size - offset) {
        want = Math.min(size - offset, want * 2);
        continue;
      }
      return records;
    }
  }

  /** Empties the file (after waiting for pending appends; appends made meanwhile land after it). */
  async truncate(): Promise<void> {
    await this.truncateIf(() => true);
  }

  /**
   * Empties the file if `check()` holds once every pending append is on disk, with no append in
   * between (appends made meanwhile wait and land after it). `before` runs first, inside the
   * same exclusive section. Resolves to whether it truncated.
   */
  async truncateIf(check: () => boolean, before?: () => Promise<void>): Promise<boolean> {
    // inline (not `await this.flush()`): nothing may run between the last wait and the check
    while (this.flushing) await this.flushing;
    if (!check()) return false;
    const op = (async () => {
      if (before) await before();
      await this.fh.truncate(0);
      if (this.durable) await this.fh.sync();
      this.sizeBytes = 0;
    })();
    // appends made while truncating wait for it (flushLoop only starts when `flushing` is unset)
    this.flushing = op.then(
      () => this.afterExclusive(),
      () => this.afterExclusive(),
    );
    await op;
    return true;
  }

  private afterExclusive(): Promise<void> | void {
    this.flushing = undefined;
    if (this.queue.length > 0) {
      this.flushing = this.flushLoop();
      return this.flushing;
    }
  }

  /** Waits for pending appends and closes the file. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
    await this.fh.close();
  }
}
