/**
 * Poll cursors, one file per channel account: `<stateDir>/channels/<channel>/<account>.cursor`
 * (UTF-8, the plugin's `PollResult.cursor` as is). Written atomically (temporary file, then
 * rename), so a crash leaves the previous cursor or the new one, never a torn one.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";

/** Where the cursor of `channel`/`account` lives. The names are already checked (`[A-Za-z0-9_.-]`). */
export function cursorPath(stateDir: string, channel: string, account: string): string {
  return path.join(stateDir, "channels", channel, `${encodeURIComponent(account)}.cursor`);
}

/**
 * Reads a cursor. @returns it, or undefined when none was written yet
 * @throws Error (with the path) when the file exists but cannot be read
 */
export async function readCursor(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read poll cursor ${file}: ${(err as Error).message}`);
  }
}

/** Writes a cursor atomically. @throws Error (with the path) when the directory or file cannot be written */
export async function writeCursor(file: string, cursor: string): Promise<void> {
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(tmp, cursor, "utf8");
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new Error(`cannot write poll cursor ${file}: ${(err as Error).message}`);
  }
}
