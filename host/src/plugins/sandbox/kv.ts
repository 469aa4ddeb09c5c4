// The plugins' persistent key-value store. It lives on the main thread, one store per state
// directory shared by every instance (worker) of the plugin and by a replacement pool after a
// hot reload; workers reach it through the same blocking request channel as HTTP. That keeps a
// single writer per file (no cross-thread file locking, which Node lacks), one consistent view
// for all instances, and an exact quota check.
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { kvFileMsgpack } from "../../protocol/msgpack.mjs";

/** File name of the store inside the plugin's state directory. */
export const KV_FILE = "kv.msgpack";

/** A kv request the guest got wrong or that would break the quota; the message is for the guest. */
export class KvError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KvError";
  }
}

/**
 * One plugin's store: a map of string keys to byte values, kept in memory and persisted as a
 * MessagePack map (`{key: bin}`) in `<stateDir>/kv.msgpack`. Every write is persisted before it
 * is acknowledged (temporary file + rename, so the file is always either the old or the new
 * version; not fsynced); concurrent writes share one file write.
 */
export class KvStore {
  private map: Map<string, Uint8Array> | null = null;
  private loading: Promise<Map<string, Uint8Array>> | null = null;
  /** Sum of UTF-8 key bytes and value bytes. */
  private used = 0;
  private waiting: Array<{ resolve(): void; reject(err: unknown): void }> = [];
  private flushing: Promise<void> | null = null;
  private tmpSeq = 0;

  constructor(readonly dir: string) {}

  /** The file this store persists to. */
  get file(): string {
    return path.join(this.dir, KV_FILE);
  }

  /** Bytes in use (keys as UTF-8 plus values). Loads the file if needed. */
  async usedBytes(): Promise<number> {
    await this.load();
    return this.used;
  }

  private load(): Promise<Map<string, Uint8Array>> {
    if (this.map !== null) return Promise.resolve(this.map);
    this.loading ??= (async () => {
      const map = new Map<string, Uint8Array>();
      let bytes: Buffer | null = null;
      try {
        bytes = await readFile(this.file);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
      }
      if (bytes !== null && bytes.length > 0) {
        const decoded: unknown = kvFileMsgpack.unpack(bytes);
        if (!(decoded instanceof Map)) throw new Error(`${this.file}: not a MessagePack map`);
        for (const [k, v] of decoded) {
          if (typeof k === "string" && v instanceof Uint8Array) {
            map.set(k, v);
            this.used += Buffer.byteLength(k) + v.length;
          }
        }
      }
      this.map = map;
      return map;
    })();
    return this.loading;
  }

  /** The value of `key`, or null. */
  async get(key: string): Promise<Uint8Array | null> {
    return (await this.load()).get(key) ?? null;
  }

  /** Keys starting with `prefix`, sorted. */
  async list(prefix: string): Promise<string[]> {
    const keys: string[] = [];
    for (const k of (await this.load()).keys()) if (k.startsWith(prefix)) keys.push(k);
    return keys.sort();
  }

  /**
   * Stores `value` under `key` and persists.
   * @param quotaBytes most bytes (keys + values) the store may hold
   * @throws KvError if the write would take the store over `quotaBytes` (nothing is changed).
   */
  async set(key: string, value: Uint8Array, quotaBytes: number): Promise<void> {
    const map = await this.load();
    const old = map.get(key);
    const keyBytes = Buffer.byteLength(key);
    const next = this.used - (old === undefined ? 0 : keyBytes + old.length) + keyBytes + value.length;
    if (next > quotaBytes && next > this.used) {
      throw new KvError(
        `quota exceeded: storing '${key}' (${keyBytes + value.length} bytes) would use ${next} of the ${quotaBytes} bytes granted (capability 'kv', quotaBytes)`,
      );
    }
    map.set(key, value);
    this.used = next;
    await this.persist();
  }

  /** Removes `key` and persists; whether it existed. */
  async delete(key: string): Promise<boolean> {
    const map = await this.load();
    const old = map.get(key);
    if (old === undefined) return false;
    map.delete(key);
    this.used -= Buffer.byteLength(key) + old.length;
    await this.persist();
    return true;
  }

  /** Resolves once everything written so far is on disk. */
  async flush(): Promise<void> {
    while (this.flushing !== null) await this.flushing;
  }

  private persist(): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  private async flushLoop(): Promise<void> {
    try {
      while (this.waiting.length > 0) {
        const batch = this.waiting.splice(0);
        try {
          await this.writeFile();
          for (const w of batch) w.resolve();
        } catch (err) {
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.flushing = null;
    }
  }

  private async writeFile(): Promise<void> {
    const map = this.map ?? new Map<string, Uint8Array>();
    await mkdir(this.dir, { recursive: true });
    const tmp = `${this.file}.${process.pid}.${++this.tmpSeq}.tmp`;
    try {
      await writeFile(tmp, kvFileMsgpack.pack(map));
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
  }
}

const open = new Map<string, { store: KvStore; refs: number }>();

/**
 * The store of `stateDir`, shared by everyone who opened it (every pool of the same plugin).
 * Pair with {@link releaseKvStore}.
 */
export function openKvStore(stateDir: string): KvStore {
  const dir = path.resolve(stateDir);
  let entry = open.get(dir);
  if (entry === undefined) {
    entry = { store: new KvStore(dir), refs: 0 };
    open.set(dir, entry);
  }
  entry.refs++;
  return entry.store;
}

/** Drops one reference taken by {@link openKvStore}; the last one flushes and forgets the store. */
export async function releaseKvStore(store: KvStore): Promise<void> {
  const entry = open.get(store.dir);
  if (entry === undefined || entry.store !== store) return;
  entry.refs--;
  if (entry.refs > 0) return;
  open.delete(store.dir);
  await store.flush();
}
