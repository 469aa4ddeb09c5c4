/**
 * One process per store directory, decided before the gateway listens: the journal takes writes
 * before the embedded engine (whose own `LOCK` is the other guard) has opened, so a second
 * process on the same directory must be refused before it journals anything.
 *
 * The lock is a file, `<journal dir>/LOCK`, created with `O_EXCL` and holding the owner's pid and
 * its start time (field 22 of `/proc/<pid>/stat`, clock ticks since boot; absent off Linux). A
 * lock whose owner is gone (no such pid, or a pid reused by a process started at another time)
 * is stale: a crashed owner. It is taken over by renaming it aside (one process wins the rename),
 * checking that what was renamed is the stale lock that was read, and creating a new one.
 * Node has no `flock`/`fcntl`; the engine's own lock still refuses a second process at its open.
 */
import { link, readFile, rename, unlink } from "node:fs/promises";
import { linkSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "../errors.js";
import { errorMessage } from "../../util/index.js";

/** The held lock. */
export interface DirLock {
  /** Removes the lock file (idempotent; best effort). */
  release(): Promise<void>;
}

/** The lock file's name inside the journal directory. */
export const LOCK_FILE = "LOCK";

/** This process's start time in clock ticks since boot (Linux), or "" elsewhere. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: fields restart after the last ")".
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && process.platform === "linux") return undefined;
    return "";
  }
}

/** Whether the process a lock file names still runs (the same process: pid and start time). */
function ownerAlive(content: string): boolean {
  const [pidText, start] = content.trim().split(" ");
  const pid = Number(pidText);
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists (another user's process).
    if ((err as NodeJS.ErrnoException).code !== "EPERM") return false;
  }
  const now = startTimeOf(pid);
  if (now === undefined) return false;
  return start === undefined || start === "" || now === "" || now === start;
}

/**
 * Takes the lock of the store whose journal is `dir` (the directory must exist).
 * @throws StoreError `unavailable` when another running process holds it (the message says
 *   which pid and asks whether another exoclaw process uses the directory), or the file cannot
 *   be written
 */
export async function lockJournalDir(dir: string, displayUrl: string): Promise<DirLock> {
  const path = join(dir, LOCK_FILE);
  const mine = `${process.pid} ${startTimeOf(process.pid) ?? ""}\n`;
  for (let attempt = 0; attempt < 20; attempt++) {
    // Written whole, then linked into place: the lock never exists half written.
    // Synchronous calls: three metadata system calls of a few µs each, where going through the
    // thread pool made the lock four round trips on the start-up's critical path, each waiting for
    // the main thread busy loading plugins (20-40 ms of wall time measured; docs/architecture.md,
    // "Start-up on an existing store").
    const tmp = join(dir, `.${LOCK_FILE}.${process.pid}.${attempt}`);
    try {
      writeFileSync(tmp, mine, { mode: 0o600 });
      try {
        linkSync(tmp, path);
        let released = false;
        return {
          async release() {
            if (released) return;
            released = true;
            // Only our own lock: never one another process took after a stale takeover.
            const content = await readFile(path, "utf8").catch(() => "");
            if (content === mine) await unlink(path).catch(() => {});
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      } finally {
        try {
          unlinkSync(tmp);
        } catch {
          // best effort: a leftover temporary file is never read as the lock
        }
      }
    } catch (err) {
      throw new StoreError("unavailable", `cannot lock the store ${displayUrl} (${path}): ${errorMessage(err)}`, { cause: err });
    }
    const held = await readFile(path, "utf8").catch(() => undefined);
    if (held === undefined) continue; // released meanwhile: try again
    if (ownerAlive(held)) {
      throw new StoreError(
        "unavailable",
        `cannot open the store ${displayUrl}: it is locked by process ${held.trim().split(" ")[0]} (is another exoclaw process using this directory?)`,
      );
    }
    // Stale: rename it aside (one taker wins), and check that it is the lock read above.
    const aside = join(dir, `.${LOCK_FILE}.stale.${process.pid}`);
    const moved = await rename(path, aside).then(
      () => true,
      () => false,
    );
    if (moved) {
      const took = await readFile(aside, "utf8").catch(() => "");
      // Another process's fresh lock (it took over first): put it back, unless a third one exists.
      if (took !== held) await link(aside, path).catch(() => {});
      await unlink(aside).catch(() => {});
    }
    await new Promise((r) => setTimeout(r, 5 + attempt * 5));
  }
  throw new StoreError(
    "unavailable",
    `cannot lock the store ${displayUrl} (${path}): it keeps changing (is another exoclaw process starting on this directory?)`,
  );
}
