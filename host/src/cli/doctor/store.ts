import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Config } from "../../config/index.js";
import { describeStoreUrl, MEMORY_STORE_URL, openSessionLog, StoreCorruptError } from "../../store/index.js";
import { findLockHolder } from "./lock-holder.js";
import { error, ok, type Finding } from "./types.js";

/** How long opening a networked store (SurrealDB server, NATS) may take before it counts as unreachable, ms. */
export const STORE_OPEN_TIMEOUT_MS = 5_000;

/**
 * Checks that the session store opens. An embedded surrealkv directory that does not exist yet
 * is fine (the gateway creates it); one locked by another process names that process (its pid
 * from `/proc/locks` on Linux) — fine when it is the gateway `doctor` found running on the
 * configured port, an error otherwise. It opens the store as `exoclaw sessions` does.
 * @param gatewayRunning a gateway answers on the configured port (so its lock is expected)
 */
export async function checkStore(config: Config, gatewayRunning: boolean): Promise<Finding> {
  const check = "store";
  const url = config.store.url;
  const shown = describeStoreUrl(url);
  if (url === MEMORY_STORE_URL) return ok(check, "memory store: sessions live in the gateway process and are lost on exit");
  const dir = /^(?:surrealkv|rocksdb):\/\/([^?]*)/.exec(url)?.[1];
  if (dir !== undefined) {
    if (!existsSync(dir)) return ok(check, `${shown}: not created yet (the gateway creates it on first start)`);
    const holder = await findLockHolder(join(dir, "LOCK"));
    if (holder !== undefined) {
      const who = `pid ${holder.pid}${holder.command ? ` (${holder.command})` : ""}`;
      if (gatewayRunning) return ok(check, `${shown} is open in the running gateway, ${who}`);
      return error(
        check,
        `${shown} is locked by another process, ${who}`,
        `stop that process (kill ${holder.pid}), or give this gateway its own store ([store] url or EXOCLAW_STORE)`,
      );
    }
  }
  const started = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const log = await Promise.race([
      openSessionLog(config.store),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${STORE_OPEN_TIMEOUT_MS} ms`)), STORE_OPEN_TIMEOUT_MS);
      }),
    ]);
    const sessions = await log.countSessions();
    await log.close();
    return ok(check, `${shown} opens (${sessions} session(s))`, { latencyMs: Math.round(performance.now() - started) });
  } catch (err) {
    const message = (err as Error).message;
    if (err instanceof StoreCorruptError) return error(check, message, "exoclaw store check (then restore a backup, or exoclaw store check --accept-loss)");
    if (gatewayRunning && /lock/i.test(message)) return ok(check, `${shown} is open in the running gateway`);
    return error(
      check,
      message,
      dir !== undefined
        ? `check ${dir} (exoclaw store check), or set [store] url / EXOCLAW_STORE`
        : `start the store server at ${shown}, or fix [store] url / EXOCLAW_STORE`,
    );
  } finally {
    clearTimeout(timer);
  }
}
