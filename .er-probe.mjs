// .er-probe.ts
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as join2 } from "node:path";

// host/src/store/surreal/engine.ts
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

// host/src/util/error-message.mjs
function errorMessage(err) {
  return err instanceof Error ? err.message : String(err);
}

// host/src/util/subject-token.ts
var encoder = new TextEncoder();
var strictDecoder = new TextDecoder("utf-8", { fatal: true });

// host/src/util/ip.ts
var V4_SEG = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])";
var V4_STR = `(?:${V4_SEG}\\.){3}${V4_SEG}`;
var V6_SEG = "(?:[0-9a-fA-F]{1,4})";
var IPV6_RE = new RegExp(
  `^(?:(?:${V6_SEG}:){7}(?:${V6_SEG}|:)|(?:${V6_SEG}:){6}(?:${V4_STR}|:${V6_SEG}|:)|(?:${V6_SEG}:){5}(?::${V4_STR}|(?::${V6_SEG}){1,2}|:)|(?:${V6_SEG}:){4}(?:(?::${V6_SEG}){0,1}:${V4_STR}|(?::${V6_SEG}){1,3}|:)|(?:${V6_SEG}:){3}(?:(?::${V6_SEG}){0,2}:${V4_STR}|(?::${V6_SEG}){1,4}|:)|(?:${V6_SEG}:){2}(?:(?::${V6_SEG}){0,3}:${V4_STR}|(?::${V6_SEG}){1,5}|:)|(?:${V6_SEG}:){1}(?:(?::${V6_SEG}){0,4}:${V4_STR}|(?::${V6_SEG}){1,6}|:)|(?::(?:(?::${V6_SEG}){0,5}:${V4_STR}|(?::${V6_SEG}){1,7}|:)))(?:%[0-9a-zA-Z-.:]{1,})?$`
);

// host/src/store/errors.ts
var StoreError = class extends Error {
  constructor(code, message, options) {
    super(message, options);
    this.code = code;
    this.name = "StoreError";
    if (options?.publicFailure) this.publicFailure = options.publicFailure;
  }
  code;
  /** Set on failures a client should hear about as such (full disk, broken store); see {@link PublicStoreFailure}. */
  publicFailure;
};

// host/src/store/surreal/memory.ts
import { totalmem } from "node:os";
var MiB = 1024 * 1024;
var GiB = 1024 * MiB;
var ENGINE_MEMORY_SETTINGS = [
  { name: "SURREAL_SURREALKV_BLOCK_CACHE_CAPACITY", defaultBytes: 64 * MiB, minBytes: 1 * MiB },
  { name: "SURREAL_SURREALKV_MAX_MEMTABLE_SIZE", defaultBytes: 64 * MiB, minBytes: 16 * MiB },
  { name: "SURREAL_ROCKSDB_BLOCK_CACHE_SIZE", defaultBytes: 64 * MiB, minBytes: 1 * MiB },
  { name: "SURREAL_ROCKSDB_WRITE_BUFFER_SIZE", defaultBytes: 16 * MiB, minBytes: 1 * MiB },
  { name: "SURREAL_ROCKSDB_MAX_WRITE_BUFFER_NUMBER", defaultBytes: 2, minBytes: 2, unit: "count" },
  { name: "SURREAL_ROCKSDB_MIN_WRITE_BUFFER_NUMBER_TO_MERGE", defaultBytes: 1, minBytes: 1, unit: "count" },
  { name: "SURREAL_ROCKSDB_COMPACTION_READAHEAD_SIZE", defaultBytes: 4 * MiB, minBytes: 0 },
  // The engine's own rule (SurrealDB `kvs/surrealkv/cnf.rs`), so that the engine does not scan /proc for it.
  {
    name: "SURREAL_SURREALKV_VLOG_MAX_FILE_SIZE",
    defaultBytes: (ram) => (ram < 4 * GiB ? 64 : ram < 16 * GiB ? 128 : ram < 64 * GiB ? 256 : 512) * MiB,
    minBytes: 1 * MiB
  }
];
function engineRamBytes() {
  const total = totalmem();
  const limit = process.constrainedMemory?.();
  return limit !== void 0 && limit > 0 && limit < total ? limit : total;
}
var UNITS = { "": 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB, g: 1024 * MiB, gb: 1024 * MiB, gib: 1024 * MiB };
function parseEngineBytes(text2) {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(text2);
  const unit = m ? UNITS[m[2].toLowerCase()] : void 0;
  if (!m || unit === void 0) return void 0;
  const n = Number(m[1]) * unit;
  return Number.isSafeInteger(n) ? n : void 0;
}
function engineMemoryEnv(env, ramBytes = engineRamBytes()) {
  const out = {};
  for (const s of ENGINE_MEMORY_SETTINGS) {
    const given = env[s.name];
    if (given === void 0 || given.trim() === "") {
      out[s.name] = String(typeof s.defaultBytes === "function" ? s.defaultBytes(ramBytes) : s.defaultBytes);
      continue;
    }
    const bytes = s.unit === "count" ? /^\s*\d+\s*$/.test(given) ? Number(given) : void 0 : parseEngineBytes(given);
    if (bytes === void 0 && s.unit === "count") {
      throw new StoreError(
        "invalid_argument",
        `${s.name}=${JSON.stringify(given)} is not a whole number; the engine would ignore it and size this from the machine's RAM`
      );
    }
    if (bytes === void 0) {
      throw new StoreError(
        "invalid_argument",
        `${s.name}=${JSON.stringify(given)} is not a byte size (e.g. 64MiB, 256m, 1g, 1048576); the engine would ignore it and size this from the machine's RAM`
      );
    }
    if (bytes < s.minBytes) {
      throw new StoreError(
        "invalid_argument",
        `${s.name}=${JSON.stringify(given)} is below the minimum of ${s.unit === "count" ? s.minBytes : `${s.minBytes / MiB} MiB`}`
      );
    }
    out[s.name] = s.name.startsWith("SURREAL_ROCKSDB_") ? String(bytes) : given;
  }
  return out;
}
function applyEngineMemoryEnv() {
  for (const [name, value2] of Object.entries(engineMemoryEnv(process.env))) process.env[name] = value2;
}

// host/src/store/surreal/cbor-plain.ts
var INITIAL_BYTES = 64 * 1024;
var buf = Buffer.allocUnsafe(INITIAL_BYTES);
var pos = 0;
var NOT_PLAIN = /* @__PURE__ */ Symbol("not plain");
function claim(n) {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
}
function head(major, n) {
  const base = major << 5;
  if (n < 24) {
    claim(1);
    buf[pos++] = base + n;
  } else if (n < 256) {
    claim(2);
    buf[pos++] = base + 24;
    buf[pos++] = n;
  } else if (n < 65536) {
    claim(3);
    buf[pos++] = base + 25;
    buf.writeUInt16BE(n, pos);
    pos += 2;
  } else if (n < 4294967296) {
    claim(5);
    buf[pos++] = base + 26;
    buf.writeUInt32BE(n, pos);
    pos += 4;
  } else {
    claim(9);
    buf[pos++] = base + 27;
    buf.writeBigUInt64BE(BigInt(n), pos);
    pos += 8;
  }
}
var SHORT_TEXT = 24;
function text(s) {
  const n = s.length;
  if (n < SHORT_TEXT) {
    claim(1 + n);
    let p = pos + 1;
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i);
      if (c >= 128) {
        p = -1;
        break;
      }
      buf[p++] = c;
    }
    if (p >= 0) {
      buf[pos] = 96 + n;
      pos = p;
      return;
    }
  }
  const max = s.length * 3;
  const headBytes = max < 24 ? 1 : max < 256 ? 2 : max < 65536 ? 3 : max < 4294967296 ? 5 : 9;
  claim(headBytes + max);
  const start = pos;
  const written = buf.write(s, start + headBytes, "utf8");
  const real = written < 24 ? 1 : written < 256 ? 2 : written < 65536 ? 3 : written < 4294967296 ? 5 : 9;
  if (real !== headBytes) buf.copy(buf, start + real, start + headBytes, start + headBytes + written);
  head(3, written);
  pos = start + real + written;
}
function value(v) {
  switch (typeof v) {
    case "string":
      text(v);
      return;
    case "number":
      if (Number.isInteger(v)) {
        if (v >= 0 && v <= 9007199254740992) head(0, v);
        else if (v < 0 && v >= -9007199254740992) head(1, -(v + 1));
        else throw NOT_PLAIN;
      } else {
        claim(9);
        buf[pos++] = 251;
        buf.writeDoubleBE(v, pos);
        pos += 8;
      }
      return;
    case "boolean":
      claim(1);
      buf[pos++] = v ? 245 : 244;
      return;
    case "undefined":
      claim(2);
      buf[pos++] = 198;
      buf[pos++] = 246;
      return;
    case "object": {
      if (v === null) {
        claim(1);
        buf[pos++] = 246;
        return;
      }
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) throw NOT_PLAIN;
        head(4, v.length);
        for (let i = 0; i < v.length; i++) value(v[i]);
        return;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw NOT_PLAIN;
      const keys = Object.keys(v);
      if (Object.getOwnPropertySymbols(v).length > 0) throw NOT_PLAIN;
      head(5, keys.length);
      for (const k of keys) {
        text(k);
        value(v[k]);
      }
      return;
    }
    default:
      throw NOT_PLAIN;
  }
}
function encodePlainCbor(input) {
  pos = 0;
  try {
    value(input);
  } catch (err) {
    if (err === NOT_PLAIN) return void 0;
    throw err;
  }
  const out = Uint8Array.prototype.slice.call(buf, 0, pos);
  if (buf.length > 16 * INITIAL_BYTES) buf = Buffer.allocUnsafe(INITIAL_BYTES);
  return out;
}

// host/src/store/surreal/engine.ts
var dynamicImport = (specifier) => import(specifier);
var sdkPromise;
var nativePromise;
function loadSdk() {
  sdkPromise ??= dynamicImport("surrealdb").then(
    (m) => m,
    (err) => {
      sdkPromise = void 0;
      throw new StoreError("unavailable", `the SurrealDB store needs the "surrealdb" package: ${err.message}`, { cause: err });
    }
  );
  return sdkPromise;
}
function loadNativeBinding() {
  nativePromise ??= (async () => {
    const direct = requirePlatformBinary();
    if (direct !== void 0) return direct;
    try {
      await dynamicImport("@surrealdb/node");
    } catch (err) {
      throw new StoreError(
        "unavailable",
        `the embedded SurrealDB engine (@surrealdb/node) does not load on ${process.platform}-${process.arch}: ${err.message}`,
        { cause: err }
      );
    }
    const cache = createRequire(import.meta.url).cache;
    for (const [file, mod] of Object.entries(cache)) {
      if (!file.endsWith(".node")) continue;
      const exports = mod?.exports;
      if (typeof exports?.SurrealNodeEngine?.connect === "function") return exports;
    }
    throw new StoreError("unavailable", "the embedded SurrealDB engine (@surrealdb/node) loaded, but its native binding was not found");
  })().catch((err) => {
    nativePromise = void 0;
    throw err;
  });
  return nativePromise;
}
function requirePlatformBinary() {
  const { platform, arch } = process;
  const suffix = platform === "linux" ? `linux-${arch}-gnu` : platform === "darwin" ? `darwin-${arch}` : platform === "win32" ? `win32-${arch}-msvc` : void 0;
  if (suffix === void 0 || platform === "linux" && !glibc()) return void 0;
  const require2 = createRequire(import.meta.url);
  for (const dir of require2.resolve.paths("@surrealdb/node") ?? []) {
    const file = join(dir, "@surrealdb", "node", "dist", `surrealdb-node.${suffix}.node`);
    if (!existsSync(file)) continue;
    try {
      const exports = require2(file);
      return typeof exports.SurrealNodeEngine?.connect === "function" ? exports : void 0;
    } catch {
      return void 0;
    }
  }
  return void 0;
}
function glibc() {
  try {
    return !readFileSync("/usr/bin/ldd", "utf8").includes("musl");
  } catch {
    return false;
  }
}
var onDisk = /* @__PURE__ */ new Map();
function openError(displayUrl, err) {
  const msg = errorMessage(err);
  const hint = /lock/i.test(msg) ? " (is another exoclaw process using this directory?)" : "";
  return new StoreError("unavailable", `cannot open the SurrealDB store ${displayUrl}: ${msg}${hint}`, { cause: err });
}
async function acquireEmbedded(target2) {
  const binding = await loadNativeBinding();
  if (target2.engine === "mem") {
    const native2 = await binding.SurrealNodeEngine.connect(target2.url).catch((err) => {
      throw openError(target2.displayUrl, err);
    });
    let released = false;
    return {
      native: native2,
      async release() {
        if (released) return;
        released = true;
        await native2.free();
      }
    };
  }
  let shared = onDisk.get(target2.url);
  if (shared && (shared.namespace !== target2.namespace || shared.database !== target2.database)) {
    throw new StoreError(
      "invalid_argument",
      `${target2.displayUrl} is already open in this process with namespace ${shared.namespace} and database ${shared.database}`
    );
  }
  if (!shared) {
    applyEngineMemoryEnv();
    const entry = { native: binding.SurrealNodeEngine.connect(target2.url), namespace: target2.namespace, database: target2.database };
    entry.native.catch(() => {
      if (onDisk.get(target2.url) === entry) onDisk.delete(target2.url);
    });
    onDisk.set(target2.url, entry);
    shared = entry;
  }
  const native = await shared.native.catch((err) => {
    throw openError(target2.displayUrl, err);
  });
  return { native, release: async () => {
  } };
}
function embeddedEngineFactory(sdk2, acquire, onFailure) {
  class EmbeddedEngine extends sdk2.RpcEngine {
    features = /* @__PURE__ */ new Set([sdk2.Features.Transactions]);
    #events = new sdk2.Publisher();
    #handle;
    #opening;
    subscribe(event, listener) {
      return this.#events.subscribe(event, listener);
    }
    open(state) {
      this._state = state;
      this.#opening = acquire().then(
        (handle) => {
          this.#handle = handle;
          this.#events.publish("connected");
        },
        (err) => onFailure(err)
      );
    }
    async close() {
      await this.#opening;
      const handle = this.#handle;
      this.#handle = void 0;
      this._state = void 0;
      if (handle) await handle.release();
      this.#events.publish("disconnected");
    }
    ready() {
    }
    liveQuery() {
      throw new sdk2.UnsupportedFeatureError(sdk2.Features.LiveQueries);
    }
    async send(request) {
      const handle = this.#handle;
      if (!handle) throw new sdk2.ConnectionUnavailableError();
      const message = { id: this._context.uniqueId(), ...request };
      const payload = encodePlainCbor(message) ?? this._context.codecs.cbor.encode(message);
      const response = this._context.codecs.cbor.decode(await handle.native.execute(payload));
      if (response !== null && typeof response === "object" && "error" in response) {
        throw sdk2.parseRpcError(response.error);
      }
      return response;
    }
  }
  return (context) => new EmbeddedEngine(context);
}

// .er-probe.ts
var sdk = await loadSdk();
var url = `rocksdb://${mkdtempSync(join2(tmpdir(), "er-probe-"))}`;
var target = { engine: "rocksdb", url, displayUrl: url, namespace: "exoclaw", database: "sessions" };
var engine = embeddedEngineFactory(sdk, () => acquireEmbedded(target), (err) => {
  throw err;
});
var db = new sdk.Surreal({ engines: { rocksdb: engine } });
await db.connect(url, { namespace: target.namespace, database: target.database });
var q = async (sql, vars = {}) => {
  const r = await db.query(sql, vars).responses();
  console.log(sql.slice(0, 90).replace(/\n/g, " "), "=>", JSON.stringify(r.map((x) => x.success ? x.result : "ERR " + x.error.message), (_k, v) => typeof v === "bigint" ? Number(v) : v));
};
await q(process.argv[2] ?? "RETURN 1;");
var sqls = JSON.parse(process.env.SQLS ?? "[]");
for (const s of sqls) await q(s, { k: "x", key: "s1", rows: [{ id: ["pm", "a"], session: "s1", seq: 1 }] });
await db.close();
