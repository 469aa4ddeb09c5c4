/**
 * Loading the SurrealDB SDK lazily, and the embedded engine exoclaw uses instead of
 * `@surrealdb/node`'s `NodeEngine`.
 *
 * Why a own engine (measured with surrealdb 2.0.8 / @surrealdb/node 3.0.3 / SurrealDB 3.0.2):
 * - `NodeEngine` reports a failed open (e.g. a directory locked by another process) only as an
 *   engine `error` event the SDK never forwards, so `connect()` hangs for ever.
 * - its `close()` does not await the native `free()`, so an immediate re-open races the lock;
 * - it keeps a native `recv()` for live-query notifications pending; once the schema has an
 *   index the native datastore is not released on `free()` (it holds a reference to itself),
 *   that `recv()` never settles and the Node process never exits.
 * This engine talks to the same native binding (loaded by `@surrealdb/node`'s own
 * platform-specific loader), reports open failures, skips live queries (the store needs none)
 * and keeps each on-disk datastore open once per process (see {@link acquireEmbedded}).
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import type * as Sdk from "surrealdb";
import { StoreError } from "../errors.js";
import { applyEngineMemoryEnv } from "./memory.js";
import { encodePlainCbor } from "./cbor-plain.js";
import { errorMessage } from "../../util/index.js";

/** The SDK module's type. */
export type SurrealSdk = typeof Sdk;

/** The native `SurrealNodeEngine` of `@surrealdb/node`. */
interface NativeEngine {
  execute(data: Uint8Array): Promise<Uint8Array>;
  free(): Promise<void>;
}

interface NativeBinding {
  SurrealNodeEngine: { connect(endpoint: string, options?: unknown): Promise<NativeEngine>; version(): string };
}

// A variable specifier keeps bundlers from pulling the packages into the host bundle, so the
// gateway pays for them only when a SurrealDB store is configured.
const dynamicImport = (specifier: string): Promise<unknown> => import(specifier);

let sdkPromise: Promise<SurrealSdk> | undefined;
let nativePromise: Promise<NativeBinding> | undefined;

/**
 * Imports the `surrealdb` SDK (once).
 * @throws StoreError `unavailable` when the package is not installed
 */
export function loadSdk(): Promise<SurrealSdk> {
  sdkPromise ??= dynamicImport("surrealdb").then(
    (m) => m as SurrealSdk,
    (err: unknown) => {
      sdkPromise = undefined;
      throw new StoreError("unavailable", `the SurrealDB store needs the "surrealdb" package: ${(err as Error).message}`, { cause: err });
    },
  );
  return sdkPromise;
}

/**
 * Loads `@surrealdb/node`'s native binding (once): imports the package, which loads the right
 * binary for this platform with `require`, then takes the binding from the `require` cache.
 * @throws StoreError `unavailable` when the package or its binary for this platform is missing
 */
export function loadNativeBinding(): Promise<NativeBinding> {
  nativePromise ??= (async () => {
    const direct = requirePlatformBinary();
    if (direct !== undefined) return direct;
    try {
      await dynamicImport("@surrealdb/node");
    } catch (err) {
      throw new StoreError(
        "unavailable",
        `the embedded SurrealDB engine (@surrealdb/node) does not load on ${process.platform}-${process.arch}: ${(err as Error).message}`,
        { cause: err },
      );
    }
    const cache = createRequire(import.meta.url).cache;
    for (const [file, mod] of Object.entries(cache)) {
      if (!file.endsWith(".node")) continue;
      const exports = mod?.exports as Partial<NativeBinding> | undefined;
      if (typeof exports?.SurrealNodeEngine?.connect === "function") return exports as NativeBinding;
    }
    throw new StoreError("unavailable", "the embedded SurrealDB engine (@surrealdb/node) loaded, but its native binding was not found");
  })().catch((err: unknown) => {
    nativePromise = undefined;
    throw err;
  });
  return nativePromise;
}

/**
 * The native binding required straight from `@surrealdb/node`'s platform binary
 * (`dist/surrealdb-node.<platform>-<arch>[-gnu|-msvc].node`), without importing the package:
 * its ES module imports the `surrealdb` SDK, which Node 20 compiles without a code cache
 * (40-60 ms of main thread under load) before the package's loader reaches the binary, and the
 * engine's open (on its own threads) can only start after that. Required by its path, the
 * binary is the same module the package's loader gets later (one `require` cache entry).
 * Undefined on a platform or layout this does not know (musl, a binary not found, a binary that
 * does not load): the package's own loader then decides, and reports.
 */
export function requirePlatformBinary(): NativeBinding | undefined {
  const { platform, arch } = process;
  const suffix =
    platform === "linux" ? `linux-${arch}-gnu` : platform === "darwin" ? `darwin-${arch}` : platform === "win32" ? `win32-${arch}-msvc` : undefined;
  // musl Linux takes the package's loader (it detects the C library; a glibc binary would not load there anyway).
  if (suffix === undefined || (platform === "linux" && !glibc())) return undefined;
  const require = createRequire(import.meta.url);
  for (const dir of require.resolve.paths("@surrealdb/node") ?? []) {
    const file = join(dir, "@surrealdb", "node", "dist", `surrealdb-node.${suffix}.node`);
    if (!existsSync(file)) continue;
    try {
      const exports = require(file) as Partial<NativeBinding>;
      return typeof exports.SurrealNodeEngine?.connect === "function" ? (exports as NativeBinding) : undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/**
 * Whether the C library is glibc, read the way the package's own loader (napi-rs) reads it first:
 * `/usr/bin/ldd` is a script naming musl on musl systems. Unreadable: not known (the package's loader decides).
 */
function glibc(): boolean {
  try {
    return !readFileSync("/usr/bin/ldd", "utf8").includes("musl");
  } catch {
    return false;
  }
}

/** An embedded datastore shared by the logs of one process. */
interface Shared {
  native: Promise<NativeEngine>;
  namespace: string;
  database: string;
}

const onDisk = new Map<string, Shared>();

/** A settable promise: a session log's schema set-up on one on-disk datastore. */
interface SchemaGate {
  promise: Promise<void>;
  resolve(): void;
  reject(err: unknown): void;
}

/** Per on-disk URL: settles when a session log finished its schema set-up (every migration applied) there. */
const schemaGates = new Map<string, SchemaGate>();

function schemaGate(url: string): SchemaGate {
  let gate = schemaGates.get(url);
  if (gate === undefined) {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const promise = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    promise.catch(() => {});
    gate = { promise, resolve, reject };
    schemaGates.set(url, gate);
  }
  return gate;
}

/**
 * Called by the session log once its migrations on the on-disk datastore at `url` are applied
 * (`ok`), or failed (`err`: waiters get it, and the next open starts a new wait).
 */
export function settleEmbeddedSchema(url: string, err?: unknown): void {
  const gate = schemaGate(url);
  if (err === undefined) {
    gate.resolve();
    return;
  }
  gate.reject(err);
  schemaGates.delete(url);
}

/**
 * Resolves once a session log has set up the schema of the on-disk datastore at `url` in this
 * process (at once when it already has). Another connection on the datastore (the vector table)
 * waits for it before its first statement: a write to a table before its migration defined it
 * would create the table implicitly, and the migration then fails ("already exists").
 * @throws the schema set-up's error when it failed; StoreError `unavailable` after `timeoutMs`
 */
export function embeddedSchemaReady(url: string, displayUrl: string, timeoutMs: number): Promise<void> {
  const { promise } = schemaGate(url);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new StoreError("unavailable", `the store ${displayUrl} did not open within ${timeoutMs} ms (its schema is not set up)`)),
      timeoutMs,
    );
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** True when the on-disk datastore at `url` is already open in this process (its WAL was replayed then). */
export function isEmbeddedOpen(url: string): boolean {
  return onDisk.has(url);
}

function openError(displayUrl: string, err: unknown): StoreError {
  const msg = errorMessage(err);
  const hint = /lock/i.test(msg) ? " (is another exoclaw process using this directory?)" : "";
  return new StoreError("unavailable", `cannot open the SurrealDB store ${displayUrl}: ${msg}${hint}`, { cause: err });
}

/**
 * A handle on an embedded datastore. `mem://` gives a fresh datastore freed on release. An
 * on-disk (`surrealkv`, `rocksdb`) datastore is opened once per process and stays open until the process
 * exits: the native engine does not release a datastore whose schema has indexes (so a second
 * open of the directory in the same process would wait for a lock for ever), and keeping it
 * lets a log be closed and reopened in one process. Every log on one directory must use the
 * same namespace and database, because they share the native connection's session.
 * @throws StoreError `unavailable` when the datastore cannot be opened; `invalid_argument` when
 *   the directory is already open here with another namespace/database
 */
export async function acquireEmbedded(target: {
  engine: "mem" | "surrealkv" | "rocksdb";
  url: string;
  displayUrl: string;
  namespace: string;
  database: string;
}): Promise<{ native: NativeEngine; release(): Promise<void> }> {
  const binding = await loadNativeBinding();
  if (target.engine === "mem") {
    const native = await binding.SurrealNodeEngine.connect(target.url).catch((err: unknown) => {
      throw openError(target.displayUrl, err);
    });
    let released = false;
    return {
      native,
      async release() {
        if (released) return;
        released = true;
        await native.free();
      },
    };
  }
  let shared = onDisk.get(target.url);
  if (shared && (shared.namespace !== target.namespace || shared.database !== target.database)) {
    throw new StoreError(
      "invalid_argument",
      `${target.displayUrl} is already open in this process with namespace ${shared.namespace} and database ${shared.database}`,
    );
  }
  if (!shared) {
    // Before the engine's first open: it reads its cache and memtable sizes once per process.
    applyEngineMemoryEnv();
    const entry: Shared = { native: binding.SurrealNodeEngine.connect(target.url), namespace: target.namespace, database: target.database };
    entry.native.catch(() => {
      if (onDisk.get(target.url) === entry) onDisk.delete(target.url);
    });
    onDisk.set(target.url, entry);
    shared = entry;
  }
  const native = await shared.native.catch((err: unknown) => {
    throw openError(target.displayUrl, err);
  });
  return { native, release: async () => {} };
}

/**
 * Builds the SDK engine class for embedded datastores (after the SDK is loaded). `acquire`
 * opens the datastore; a failure is passed to `onFailure` (the SDK itself would wait for ever).
 */
export function embeddedEngineFactory(
  sdk: SurrealSdk,
  acquire: () => Promise<{ native: NativeEngine; release(): Promise<void> }>,
  onFailure: (err: unknown) => void,
): Sdk.EngineFactory {
  class EmbeddedEngine extends sdk.RpcEngine implements Sdk.SurrealEngine {
    features = new Set([sdk.Features.Transactions]);
    readonly #events = new sdk.Publisher<Sdk.EngineEvents>();
    #handle?: { native: NativeEngine; release(): Promise<void> };
    #opening?: Promise<void>;

    subscribe<K extends keyof Sdk.EngineEvents>(event: K, listener: (...payload: Sdk.EngineEvents[K]) => void): () => void {
      return this.#events.subscribe(event, listener);
    }

    open(state: Sdk.ConnectionState): void {
      this._state = state;
      this.#opening = acquire().then(
        (handle) => {
          this.#handle = handle;
          this.#events.publish("connected");
        },
        (err: unknown) => onFailure(err),
      );
    }

    async close(): Promise<void> {
      await this.#opening;
      const handle = this.#handle;
      this.#handle = undefined;
      this._state = undefined;
      if (handle) await handle.release();
      this.#events.publish("disconnected");
    }

    ready(): void {}

    liveQuery(): AsyncIterable<Sdk.LiveMessage> {
      throw new sdk.UnsupportedFeatureError(sdk.Features.LiveQueries);
    }

    async send<Method extends string, Params extends unknown[] | undefined, Result>(request: Sdk.RpcRequest<Method, Params>): Promise<Result> {
      const handle = this.#handle;
      if (!handle) throw new sdk.ConnectionUnavailableError();
      const message = { id: this._context.uniqueId(), ...request };
      // Plain requests (every query of the session log, the projection's rows above all) skip the
      // SDK's per-value replacer; the bytes are the same (cbor-plain.ts). exoclaw sets no codec
      // value visitors on its clients, which the fast path would bypass.
      const payload = encodePlainCbor(message) ?? this._context.codecs.cbor.encode(message);
      const response = this._context.codecs.cbor.decode(await handle.native.execute(payload)) as unknown;
      if (response !== null && typeof response === "object" && "error" in response) {
        throw sdk.parseRpcError((response as { error: Parameters<SurrealSdk["parseRpcError"]>[0] }).error);
      }
      return response as Result;
    }
  }
  return (context) => new EmbeddedEngine(context);
}
