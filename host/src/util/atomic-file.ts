/**
 * Whole-file state writes that a crash cannot tear: the bytes go to a temporary file beside the
 * target, are flushed to disk (`fsync`), then renamed over it, so a reader sees the previous
 * content or the new one, never a mix. Used for small state files (scheduled jobs).
 */
import { randomBytes } from "node:crypto";
import { mkdir, open, rename, rm } from "node:fs/promises";
import path from "node:path";

/** Options of {@link writeFileAtomic}. */
export interface AtomicWriteOptions {
  /** File mode of the new file; default 0o600 (state files are private to the gateway's user). */
  mode?: number;
  /** Mode of a parent directory created on the way; default 0o700. */
  dirMode?: number;
}

/**
 * Replaces `file` with `data` atomically and durably (fsync of the data before the rename).
 * @throws Error naming the file when the directory or the file cannot be written (the temporary
 *   file is removed; the previous content stays)
 */
export async function writeFileAtomic(file: string, data: string | Uint8Array, options: AtomicWriteOptions = {}): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: options.dirMode ?? 0o700 });
    const handle = await open(tmp, "wx", options.mode ?? 0o600);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new Error(`cannot write ${file}: ${(err as Error).message}`);
  }
}
