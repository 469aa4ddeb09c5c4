/**
 * Compare-and-set updates of single keys of one NATS KV bucket, shared by the gateways of a bus
 * (pairing-kv.ts, rate-kv.ts, budget-ledger.ts): read the
 * key, change its value, write it back only if the key's revision is still the one read
 * (JetStream's expected last subject sequence); a write based on a stale value is refused by the
 * server and redone on the fresh one, so concurrent updates from several gateways are never lost.
 */
import { JetStreamApiError, StorageType, type JetStreamClient } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { sleep } from "../../util/index.js";

/** JetStream error code: the expected last subject sequence did not match (a concurrent write). */
const WRONG_LAST_SEQUENCE = 10071;

/** What a {@link KvCells} needs of the bus: its JetStream client while NATS is ready. */
export interface KvCellsBus {
  readonly ready: boolean;
  readonly js: JetStreamClient | undefined;
}

/** Options of {@link KvCells}. */
export interface KvCellsOptions {
  bus: KvCellsBus;
  /** The bucket's name (created on first use with file storage and `history: 1`). */
  bucket: string;
  /** How long a key not written is kept, ms; 0 = for ever. */
  maxAgeMs: number;
  /** Compare-and-set attempts before giving up (contention); default 50. */
  maxAttempts?: number;
}

/** What an update's `change` returns: the bytes to write (undefined = write nothing) and its result. */
export interface CellChange<T> {
  write?: string;
  result: T;
}

/** See the module comment. */
export class KvCells {
  private bucket: { js: JetStreamClient; kv: Promise<KV> } | undefined;
  /** The last queued update of each key being updated in this process. */
  private readonly locks = new Map<string, Promise<void>>();

  constructor(private readonly options: KvCellsOptions) {}

  /** The bucket on the current connection. @throws Error while NATS is not ready */
  kv(): Promise<KV> {
    const { bus } = this.options;
    const js = bus.js;
    if (!bus.ready || js === undefined) return Promise.reject(new Error("NATS is not connected"));
    if (this.bucket?.js !== js) {
      const kvm = new Kvm(js);
      const kv = kvm
        .create(this.options.bucket, { history: 1, storage: StorageType.File, ...(this.options.maxAgeMs > 0 ? { ttl: this.options.maxAgeMs } : {}) })
        .catch(() => kvm.open(this.options.bucket));
      this.bucket = { js, kv };
      kv.catch(() => {
        if (this.bucket?.kv === kv) this.bucket = undefined;
      });
    }
    return this.bucket.kv;
  }

  /** The value of `key` (undefined when absent or deleted). @throws Error when NATS cannot be reached */
  async get(key: string): Promise<Uint8Array | undefined> {
    const e = await (await this.kv()).get(key);
    return e?.operation === "PUT" ? e.value : undefined;
  }

  /**
   * Reads `key`, applies `change` to its value (undefined when absent) and writes the result if
   * the revision is still the one read; redoes it on a concurrent write. Updates of one key in
   * this process are queued, so conflicts come only from other processes.
   * @returns `change`'s result of the attempt that was written (or wrote nothing)
   * @throws Error when NATS cannot be reached or the key stays contended for `maxAttempts`; what `change` throws
   */
  async update<T>(key: string, change: (value: Uint8Array | undefined) => CellChange<T>): Promise<T> {
    const before = this.locks.get(key) ?? Promise.resolve();
    let unlock!: () => void;
    const tail = before.then(() => new Promise<void>((r) => (unlock = r)));
    this.locks.set(key, tail);
    await before;
    try {
      const kv = await this.kv();
      const attempts = this.options.maxAttempts ?? 50;
      for (let attempt = 0; attempt < attempts; attempt++) {
        const e = await kv.get(key);
        const { write, result } = change(e?.operation === "PUT" ? e.value : undefined);
        if (write === undefined) return result;
        try {
          // previousSeq 0: the key must not exist yet (or was deleted: its revision then).
          await kv.put(key, write, { previousSeq: e?.revision ?? 0 });
          return result;
        } catch (err) {
          if (err instanceof JetStreamApiError && err.code === WRONG_LAST_SEQUENCE) {
            await sleep(Math.random() * 2 ** Math.min(attempt, 5));
            continue;
          }
          throw err;
        }
      }
      throw new Error(`NATS KV key ${this.options.bucket}/${key} stayed contended for ${attempts} attempts`);
    } finally {
      unlock();
      if (this.locks.get(key) === tail) this.locks.delete(key);
    }
  }
}

/**
 * A KV key for any text: `prefix` then every byte outside `[A-Za-z0-9_-]` written as `=XX` (hex),
 * since KV keys allow only `[-/=.\w]` and `.` separates tokens.
 */
export function kvKeyOf(prefix: string, text: string): string {
  let out = prefix;
  for (const b of Buffer.from(text, "utf8")) {
    const ch = String.fromCharCode(b);
    out += /[A-Za-z0-9_-]/.test(ch) ? ch : `=${b.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}
