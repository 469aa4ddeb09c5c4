import { statSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import type { PluginLogger } from "./types.js";

/** What the watcher drives: a registry that can sync one file or rescan directories. */
export interface WatchTarget {
  syncFile(file: string): Promise<void>;
  rescan(dirs: string[]): Promise<void>;
  /** Optional: re-read approvals when the approvals file changes. */
  reloadApprovals?(): Promise<void>;
}

/** Options of {@link watchPluginDirs}. */
export interface WatchOptions {
  /** Quiet time after the last event for a file before it is synced, ms; default 100. */
  debounceMs?: number;
  /** How often a directory that is missing (or whose watch failed) is looked for again, ms; default 1000. */
  retryMs?: number;
  /** The approvals file to watch as well (its directory is watched), or none. */
  approvalsFile?: string;
  logger?: PluginLogger;
}

/** A running watcher. */
export interface PluginWatcher {
  /** Stops watching and waits for syncs already started. Idempotent. */
  close(): Promise<void>;
}

const noopLogger: PluginLogger = { info() {}, warn() {}, debug() {} };

/**
 * Hot loading: watches plugin directories (not recursive) with `fs.watch` and syncs each
 * changed `*.wasm` file with the registry after `debounceMs` of quiet (so a file written in
 * several chunks is read once, complete). An event without a file name, a watch error, or a
 * directory appearing triggers a rescan of that directory; a missing directory is looked for
 * every `retryMs`. Never throws after start; problems are logged.
 * @param target the registry (`PluginHost`)
 * @param dirs directories to watch (absolute or relative to the working directory)
 */
export function watchPluginDirs(target: WatchTarget, dirs: string[], options: WatchOptions = {}): PluginWatcher {
  const debounceMs = options.debounceMs ?? 100;
  const retryMs = options.retryMs ?? 1000;
  const logger = options.logger ?? noopLogger;
  const watchers = new Map<string, FSWatcher>();
  /** Inode of each watched directory when its watch started (a replaced directory needs a new watch). */
  const inodes = new Map<string, number>();
  const timers = new Map<string, NodeJS.Timeout>();
  const running = new Set<Promise<void>>();
  let closed = false;

  const approvals = options.approvalsFile === undefined ? null : path.resolve(options.approvalsFile);
  const approvalsDir = approvals === null ? null : path.dirname(approvals);

  function track(p: Promise<void>): void {
    const t = p.catch((err: unknown) => logger.warn({ reason: (err as Error).message }, "plugin sync failed"));
    running.add(t);
    void t.finally(() => running.delete(t));
  }

  /** Runs `fn` once `key` has been quiet for `debounceMs`. */
  function debounce(key: string, fn: () => Promise<void>): void {
    const old = timers.get(key);
    if (old !== undefined) clearTimeout(old);
    timers.set(
      key,
      setTimeout(() => {
        timers.delete(key);
        if (!closed) track(fn());
      }, debounceMs),
    );
  }

  function inode(dir: string): number | null {
    try {
      return statSync(dir).ino;
    } catch {
      return null;
    }
  }

  function attach(dir: string): boolean {
    let w: FSWatcher;
    const ino = inode(dir);
    if (ino === null) return false;
    try {
      w = watch(dir, { persistent: false }, (_event, filename) => {
        const name = filename === null ? null : filename.toString();
        if (approvals !== null && dir === approvalsDir && name === path.basename(approvals)) {
          debounce(`approvals:${approvals}`, () => target.reloadApprovals?.() ?? Promise.resolve());
          return;
        }
        if (name === path.basename(dir) && inode(dir) !== ino) {
          // The directory itself was deleted or renamed (inotify ends the watch): watch it again
          // when it reappears (see `retry`), and rescan now.
          w.close();
          if (watchers.get(dir) === w) watchers.delete(dir);
          if (dirs.includes(dir)) debounce(`dir:${dir}`, () => target.rescan([dir]));
          return;
        }
        if (!dirs.includes(dir)) return;
        if (name === null) debounce(`dir:${dir}`, () => target.rescan([dir]));
        else if (name.endsWith(".wasm")) debounce(path.join(dir, name), () => target.syncFile(path.join(dir, name)));
      });
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== "ENOENT" && code !== "ENOTDIR") logger.warn({ dir, reason: (err as Error).message }, "cannot watch plugin directory");
      return false;
    }
    w.on("error", (err) => {
      logger.warn({ dir, reason: err.message }, "plugin directory watch failed; rescanning");
      w.close();
      watchers.delete(dir);
      if (dirs.includes(dir)) debounce(`dir:${dir}`, () => target.rescan([dir]));
    });
    watchers.set(dir, w);
    inodes.set(dir, ino);
    return true;
  }

  const resolvedDirs = dirs.map((d) => path.resolve(d));
  dirs = resolvedDirs;
  const all = [...new Set([...resolvedDirs, ...(approvalsDir !== null ? [approvalsDir] : [])])];
  for (const d of all) attach(d);

  // Directories that are missing (or lost their watch) are looked for again; when one appears,
  // it is rescanned, since files may have arrived before the watch existed.
  const retry = setInterval(() => {
    for (const d of all) {
      if (closed) return;
      const w = watchers.get(d);
      if (w !== undefined) {
        // A deleted or replaced directory silently ends its watch: drop it and rescan.
        if (inode(d) === inodes.get(d)) continue;
        w.close();
        watchers.delete(d);
        logger.debug({ dir: d }, "plugin directory went away or was replaced");
        if (dirs.includes(d)) debounce(`dir:${d}`, () => target.rescan([d]));
      }
      if (attach(d)) {
        logger.debug({ dir: d }, "watching plugin directory");
        if (dirs.includes(d)) debounce(`dir:${d}`, () => target.rescan([d]));
        else if (approvals !== null) debounce(`approvals:${approvals}`, () => target.reloadApprovals?.() ?? Promise.resolve());
      }
    }
  }, retryMs);
  retry.unref();

  return {
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      clearInterval(retry);
      for (const t of timers.values()) clearTimeout(t);
      timers.clear();
      for (const w of watchers.values()) w.close();
      watchers.clear();
      await Promise.all([...running]);
    },
  };
}
