/**
 * The last log lines of this process, for `logs.tail` (the Control UI's live tail). Lines are
 * kept as written: after pino's key redaction and the secret registry's value scrubbing (the
 * `streamWrite` hook in log/index.ts feeds this ring with the scrubbed line), so nothing here
 * holds a secret the log file would not. Bounded: the oldest lines drop out.
 */

/** pino's numeric levels by name (pino docs, "Logger Level"). */
export const LOG_LEVELS = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 } as const;
export type LogLevelName = keyof typeof LOG_LEVELS;

/** One kept line. */
export interface TailLine {
  /** 1, 2, 3, ... in the order written (a cursor for the next read). */
  seq: number;
  /** pino's numeric level (30 = info); 0 when the line carries none. */
  level: number;
  /** The JSON line as written, without the trailing newline. */
  line: string;
}

/** A ring of the last `capacity` log lines (a circular buffer: O(1) per line written). */
export class LogTail {
  private readonly ring: (TailLine | undefined)[];
  private seq = 0;
  private readonly listeners = new Set<(line: TailLine) => void>();

  /** @param capacity lines kept; default 2000 */
  constructor(private readonly capacity = 2000) {
    this.ring = new Array<TailLine | undefined>(capacity);
  }

  /** Keeps a written line (one or more `\n`-terminated JSON lines). Never throws. */
  push(chunk: string): void {
    for (const raw of chunk.split("\n")) {
      if (raw === "") continue;
      const m = /"level":(\d+)/.exec(raw);
      const seq = ++this.seq;
      const line = { seq, level: m ? Number(m[1]) : 0, line: raw };
      this.ring[seq % this.capacity] = line;
      for (const l of this.listeners) l(line);
    }
  }

  /**
   * Calls `listener` with each line as it is kept (synchronously, on the logging call's stack:
   * it must be cheap and must not log or throw). Returns its removal.
   */
  onLine(listener: (line: TailLine) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The seq of the newest line (0 before any). */
  lastSeq(): number {
    return this.seq;
  }

  /**
   * Lines with `seq > afterSeq` and a level at least `minLevel`, oldest first, at most `limit`
   * (the newest ones when more match).
   */
  read(options: { afterSeq?: number; minLevel?: number; limit?: number } = {}): TailLine[] {
    const min = options.minLevel ?? 0;
    const from = Math.max(options.afterSeq ?? 0, this.seq - this.capacity) + 1;
    const out: TailLine[] = [];
    for (let seq = from; seq <= this.seq; seq++) {
      const l = this.ring[seq % this.capacity];
      if (l !== undefined && l.seq === seq && l.level >= min) out.push(l);
    }
    const limit = options.limit ?? 200;
    return out.length > limit ? out.slice(out.length - limit) : out;
  }
}

/** The process's log tail, fed by every logger `createLogger` makes. */
export const processLogTail = new LogTail();
