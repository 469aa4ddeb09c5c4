import { statSync, watch, type FSWatcher } from "node:fs";
import { basename, dirname, resolve } from "node:path";

/** Options of {@link watchFiles}. */
export interface WatchFilesOptions {
  /** Quiet time after the last change before `onChange` runs, ms; default 150 (an editor's save is several events). */
  debounceMs?: number;
  /**
   * How often the files are also stat'ed (inode, size, mtime), ms; default 2000. Catches what
   * `fs.watch` misses: a watched directory replaced, symlink swaps (Kubernetes config maps),
   * file systems without inotify.
   */
  pollMs?: number;
}

/** A running {@link watchFiles}. */
export interface FileWatch {
  /** Stops watching; a pending `onChange` is dropped. Idempotent. */
  close(): void;
}

/** `ino:size:mtime` of each file ("-" when missing): changes whenever a file is written or replaced. */
function signature(files: readonly string[]): string {
  return files
    .map((f) => {
      try {
        const s = statSync(f);
        return `${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return "-";
      }
    })
    .join("|");
}

/**
 * Calls `onChange` once the files have been quiet for `debounceMs` after any of them changed.
 * Each file's directory is watched (not the file): editors save by writing a new file and
 * renaming it over the old one, which ends a watch on the file itself. Spurious calls are
 * possible (a touched file, a neighbour's event without a name): the caller compares contents.
 * Never throws after start; a directory that cannot be watched is covered by the stat poll.
 * @param files absolute or relative paths (resolved against the working directory)
 */
export function watchFiles(files: readonly string[], onChange: () => void, options: WatchFilesOptions = {}): FileWatch {
  const debounceMs = options.debounceMs ?? 150;
  const paths = files.map((f) => resolve(f));
  const byDir = new Map<string, Set<string>>();
  for (const p of paths) byDir.set(dirname(p), (byDir.get(dirname(p)) ?? new Set()).add(basename(p)));
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const schedule = () => {
    if (closed) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) onChange();
    }, debounceMs);
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, names] of byDir) {
    try {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        if (filename === null || names.has(filename.toString())) schedule();
      });
      w.on("error", () => w.close());
      watchers.push(w);
    } catch {
      // The stat poll below still notices changes.
    }
  }
  let last = signature(paths);
  const poll = setInterval(() => {
    const now = signature(paths);
    if (now === last) return;
    last = now;
    schedule();
  }, options.pollMs ?? 2000);
  poll.unref();
  return {
    close() {
      if (closed) return;
      closed = true;
      clearTimeout(timer);
      clearInterval(poll);
      for (const w of watchers) w.close();
    },
  };
}
