import { existsSync } from "node:fs";
import { statfs } from "node:fs/promises";
import { dirname } from "node:path";
import { error, ok, warn, type Finding } from "./types.js";

/** Below this much free space the store is about to fill the disk: an error, bytes (100 MiB). */
export const DISK_ERROR_BYTES = 100 * 1024 * 1024;
/** Below this much free space: a warning, bytes (1 GiB). */
export const DISK_WARN_BYTES = 1024 * 1024 * 1024;

const mib = (n: number) => `${Math.round(n / (1024 * 1024))} MiB`;

/**
 * Grades free space on the state directory's file system (pure): a store that fills its disk
 * makes the gateway exit (docs/reliability.md, "Disk full").
 * @param freeBytes bytes available to this user
 */
export function gradeDisk(where: string, freeBytes: number): Finding {
  const fix = `free space on the file system of ${where}, or move the state directory (EXOCLAW_STATE_DIR) or the store ([store] url)`;
  if (freeBytes < DISK_ERROR_BYTES) return error("disk", `${mib(freeBytes)} free on the file system of ${where}`, fix);
  if (freeBytes < DISK_WARN_BYTES) return warn("disk", `only ${mib(freeBytes)} free on the file system of ${where}`, fix);
  return ok("disk", `${mib(freeBytes)} free on the file system of ${where}`);
}

/** Measures free space (`statfs`) where the state directory is, or its nearest existing parent. */
export async function checkDisk(stateDir: string): Promise<Finding> {
  let where = stateDir;
  while (!existsSync(where) && dirname(where) !== where) where = dirname(where);
  try {
    const s = await statfs(where);
    return gradeDisk(where, s.bavail * s.bsize);
  } catch (err) {
    return warn("disk", `cannot measure free space at ${where}: ${(err as Error).message}`, `check ${where}`);
  }
}
