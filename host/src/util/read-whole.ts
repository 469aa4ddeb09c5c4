import { open } from "node:fs/promises";

/**
 * Reads a whole file in three thread-pool round trips (open, fstat, one read of its size),
 * closing it in the background: `fs.promises.readFile` takes more (it reads in 512 KiB chunks,
 * then once more to find the end) and waits for the close. Only for files nothing writes
 * meanwhile: the store's open reads its checkpoint and the engine's WAL files under the store's
 * lock, on the start-up's critical path (docs/architecture.md, "Start-up on an existing store").
 * @returns the bytes up to the size the file had when opened (fewer if it shrank meanwhile)
 * @throws the file system's error (ENOENT when it does not exist)
 */
export async function readWholeFile(path: string): Promise<Buffer> {
  const fh = await open(path, "r");
  try {
    const { size } = await fh.stat();
    const buf = Buffer.allocUnsafe(size);
    let length = 0;
    while (length < size) {
      const { bytesRead } = await fh.read(buf, length, size - length, length);
      if (bytesRead === 0) return buf.subarray(0, length);
      length += bytesRead;
    }
    return buf;
  } finally {
    // Not waited for (the caller only needs the bytes), except on Windows, where a file still
    // open cannot be deleted (the store's open deletes the checkpoint it read).
    const closing = fh.close().catch(() => {});
    if (process.platform === "win32") await closing;
  }
}
