import { readFile, stat } from "node:fs/promises";

/** A process holding a POSIX/flock lock on a file. */
export interface LockHolder {
  pid: number;
  /** Its command line (`/proc/<pid>/cmdline`, NULs as spaces), when readable. */
  command?: string;
}

/**
 * Parses `/proc/locks` (Linux, proc(5) "locks") for the pids holding a lock on the inode `ino`
 * of device `major:minor` (pure). Line format: `1: FLOCK  ADVISORY  WRITE 20882 fe:00:2171228 0 EOF`
 * (the device numbers in hex); a line marked `->` is a waiter, not a holder, and is skipped.
 */
export function lockHolders(procLocks: string, dev: { major: number; minor: number }, ino: number): number[] {
  const pids: number[] = [];
  for (const line of procLocks.split("\n")) {
    if (line.includes("->")) continue;
    const m = /^\d+:\s+\S+\s+\S+\s+\S+\s+(\d+)\s+([0-9a-f]+):([0-9a-f]+):(\d+)\s/i.exec(line);
    if (!m) continue;
    if (Number(m[4]) === ino && Number.parseInt(m[2]!, 16) === dev.major && Number.parseInt(m[3]!, 16) === dev.minor) pids.push(Number(m[1]));
  }
  return pids;
}

/** Linux `dev_t` split as the kernel's `new_encode_dev` does (the encoding `stat` returns). */
function splitDev(dev: number): { major: number; minor: number } {
  return { major: (dev >> 8) & 0xfff, minor: (dev & 0xff) | ((dev >> 12) & 0xfff00) };
}

/**
 * The process holding a lock on `file`, found through `/proc/locks`.
 * @returns undefined when nothing holds it, or when this is not Linux (no `/proc/locks`)
 */
export async function findLockHolder(file: string): Promise<LockHolder | undefined> {
  let locks: string;
  let st;
  try {
    [locks, st] = await Promise.all([readFile("/proc/locks", "utf8"), stat(file)]);
  } catch {
    return undefined;
  }
  const pid = lockHolders(locks, splitDev(st.dev), st.ino)[0];
  if (pid === undefined) return undefined;
  const cmdline = await readFile(`/proc/${pid}/cmdline`, "utf8").catch(() => "");
  const command = cmdline.replace(/\0+$/, "").replace(/\0/g, " ");
  return command ? { pid, command } : { pid };
}
