/**
 * The bus member identity of a state directory. A gateway's spool lives in its state directory
 * and belongs to one process; so does its member id, kept in `<stateDir>/bus/instance.json`
 * (`{id, pid}`), so that a process restarted on the same directory (after a crash) is the same
 * member and takes its partition leases back at once instead of waiting for them to expire.
 */
import { randomBytes } from "node:crypto";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { BusError } from "./errors.js";

/** A claimed member identity. */
export interface BusInstance {
  /** The member id to pass as `NatsBusOptions.instanceId` (12 hex digits). */
  id: string;
  /** Marks the directory free again (keeps the id). Best effort; idempotent. */
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

async function write(file: string, value: { id: string; pid: number | null }): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(value));
  await rename(tmp, file);
}

/**
 * Claims the state directory's bus member id for this process (creating it on first use).
 * @throws BusError `invalid_argument` when another live process holds the directory (naming its
 *   pid and the directory); Error when the file cannot be written
 */
export async function claimBusInstance(stateDir: string): Promise<BusInstance> {
  const dir = join(stateDir, "bus");
  const file = join(dir, "instance.json");
  await mkdir(dir, { recursive: true });
  let id: string | undefined;
  try {
    const v = JSON.parse(await readFile(file, "utf8")) as { id?: unknown; pid?: unknown };
    if (typeof v.id === "string" && /^[0-9a-f]{12}$/.test(v.id)) id = v.id;
    if (typeof v.pid === "number" && v.pid !== process.pid && alive(v.pid)) {
      throw new BusError(
        "invalid_argument",
        `the state directory ${stateDir} is in use by process ${v.pid} (its bus spool and member id belong to one process); give each gateway its own EXOCLAW_STATE_DIR`,
      );
    }
  } catch (err) {
    if (err instanceof BusError) throw err;
    // missing or unreadable: a new identity
  }
  id ??= randomBytes(6).toString("hex");
  await write(file, { id, pid: process.pid });
  let released = false;
  return {
    id,
    async release() {
      if (released) return;
      released = true;
      await write(file, { id: id!, pid: null }).catch(() => {});
    },
  };
}
