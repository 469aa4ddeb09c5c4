/**
 * The disk spool: where publishes go while NATS is unreachable, forwarded in order when it
 * returns.
 *
 * Files under `<dir>` (normally `<stateDir>/bus/spool`):
 * - `spool.log`: a {@link RecordLog} of {@link SpoolRecord}s, appended and fsync'd before the
 *   publish resolves (group commit);
 * - `cursor`: the byte offset of the first record not yet forwarded (decimal text). Written after
 *   each forwarded batch without fsync: after a crash the spool may forward a few records twice,
 *   which the message ids make harmless. Set to 0 before the log is emptied.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { RecordLog } from "./record-log.js";

/** One spooled publish. */
export interface SpoolRecord {
  /** Logical subject. */
  subject: string;
  msgId: string;
  headers: Record<string, string>;
  payload: Uint8Array;
  /** When it was spooled, ms since the Unix epoch. */
  at: number;
}

/** See the module comment. One process per directory. */
export class Spool {
  private pendingCount: number;
  private draining: Promise<boolean> | undefined;

  private constructor(
    private readonly log: RecordLog,
    private readonly cursorPath: string,
    private cursor: number,
    pending: number,
  ) {
    this.pendingCount = pending;
  }

  /** Opens (or creates) the spool in `dir`, recovering a torn tail. */
  static async open(dir: string): Promise<Spool> {
    const { log, records } = await RecordLog.open(join(dir, "spool.log"));
    const cursorPath = join(dir, "cursor");
    let cursor = 0;
    try {
      const n = Number((await readFile(cursorPath, "utf8")).trim());
      // a cursor that is not on a frame boundary (or beyond the end) is not trusted: resend all
      if (Number.isInteger(n) && n >= 0 && (n === 0 || records.some((r) => r.end === n))) cursor = n;
    } catch {
      // no cursor yet
    }
    const pending = records.filter((r) => r.end > cursor).length;
    return new Spool(log, cursorPath, cursor, pending);
  }

  /** Records spooled and not yet forwarded. */
  get pending(): number {
    return this.pendingCount;
  }

  /** True while {@link drain} runs. */
  get isDraining(): boolean {
    return this.draining !== undefined;
  }

  /** Appends a record; resolves once it is on disk. @throws Error on a disk failure */
  async append(record: SpoolRecord): Promise<void> {
    this.pendingCount++;
    try {
      await this.log.append(record);
    } catch (err) {
      this.pendingCount--;
      throw err;
    }
  }

  /**
   * Forwards pending records in order with `send` (one at a time: a record is sent only after
   * the previous one was acknowledged). Stops at the first failure. Resolves to true when the
   * spool is empty. Concurrent calls share one run.
   */
  drain(send: (record: SpoolRecord) => Promise<void>): Promise<boolean> {
    this.draining ??= this.run(send).finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  private async run(send: (record: SpoolRecord) => Promise<void>): Promise<boolean> {
    for (;;) {
      await this.log.flush();
      const batch = await this.log.readFrom(this.cursor, 256);
      if (batch.length === 0) {
        // caught up: empty the files unless something was appended meanwhile
        const done = await this.log.truncateIf(
          () => this.cursor === this.log.size,
          async () => {
            this.cursor = 0;
            await writeFile(this.cursorPath, "0");
          },
        );
        if (done) return true;
        continue;
      }
      for (const r of batch) {
        try {
          await send(r.value as SpoolRecord);
        } catch {
          await this.saveCursor();
          return false;
        }
        this.cursor = r.end;
        this.pendingCount--;
      }
      await this.saveCursor();
    }
  }

  private async saveCursor(): Promise<void> {
    await writeFile(this.cursorPath, String(this.cursor));
  }

  /** Waits for pending appends and a running drain, then closes the file. */
  async close(): Promise<void> {
    await this.draining?.catch(() => {});
    await this.log.close();
  }
}
