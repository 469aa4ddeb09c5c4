// Compiling and running the CommonJS bundles of dist/ with V8's code cache: the host bundle
// (dist/exoclaw.cjs) and the provider SDK bundles (dist/providers/*.cjs), both built by
// scripts/bundle-host.mjs. Used by bin/exoclaw.js at run time and by the build to write the caches.
// CommonJS (bin/package.json), for bin/exoclaw.js; ES modules (the build scripts, tests) import
// its named exports as usual (`exports.NAME =`, which Node's CommonJS export detection reads).
"use strict";
const { chmodSync, readFileSync, renameSync, rmSync, writeFileSync } = require("node:fs");
const { createRequire } = require("node:module");
const { dirname, join } = require("node:path");
const { pathToFileURL } = require("node:url");
const { Script } = require("node:vm");

/** The package's dist/ directory (next to bin/), with a trailing separator. */
const DIST = join(__dirname, "..", "dist") + require("node:path").sep;
exports.DIST = DIST;

/**
 * The packages the host imports lazily (`import("@anthropic-ai/sdk")`...) that the build bundles
 * into dist/providers/ so they load with a code cache instead of as ES modules from node_modules:
 * measured on the 2-core VM (load ~1), `import("@anthropic-ai/sdk")` took ~220 ms and
 * `import("undici")` ~110 ms, paid by the first model call of every process.
 */
const PROVIDER_SPECIFIERS = Object.freeze(["@anthropic-ai/sdk", "undici", "openai", "ollama", "@google/genai"]);
exports.PROVIDER_SPECIFIERS = PROVIDER_SPECIFIERS;

/** dist/providers/<name>.cjs of a specifier of {@link PROVIDER_SPECIFIERS} (`@google/genai` -> `google+genai.cjs`). */
function providerBundleFile(specifier) {
  return join(DIST, "providers", `${specifier.replace(/^@/, "").replace(/\//g, "+")}.cjs`);
}

/**
 * Compiles a bundle (a CommonJS function body in ASCII, scripts/bundle-host.mjs) with V8's code
 * cache `cacheFile` and runs its top level. V8 checks a cache against the source, its own version
 * and its flags, and rejects one that does not match (a rebuilt bundle, another Node, a damaged
 * file): the bundle is then compiled from source as usual, and `cacheWanted` says the caller
 * should write the cache again ({@link writeCodeCache}) once the code it wants in it has run.
 *
 * @param {string} file absolute path of the bundle
 * @param {string | undefined} cacheFile its code cache; undefined compiles without one
 * The bundle's `$xolazy(id)` (its renamed `require(id)` of the built-ins in {@link LAZY_BUILTINS})
 * gets {@link lazyBuiltin}.
 *
 * @param {(specifier: string) => Promise<unknown>} importer what the bundle's `$xoimp(s)` (its
 *   renamed `import(s)`) calls: a script from the code cache has no import() callback on Node 20
 * @param {(specifier: string) => unknown} [requireBundled] what a `$xolazy(s)` of a package
 *   ({@link BUNDLED_PACKAGES}) loads: the package from its own bundle, or undefined to require it
 *   from node_modules
 * @returns {{ exports: any, script: Script, cacheWanted: boolean }} the bundle's `module.exports`
 * @throws what reading the bundle or running its top level throws (a missing or broken bundle)
 */
function runBundle(file, cacheFile, importer, requireBundled) {
  let cachedData;
  if (cacheFile !== undefined) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // no cache yet
    }
  }
  // The build writes it in ASCII: latin1 is a plain copy, no UTF-8 decoding.
  const source = readFileSync(file, "latin1");
  // Parameters: what a CommonJS module gets, plus import.meta.url and import() (see bundle-host.mjs).
  const script = new Script(`(function (exports, require, module, __filename, __dirname, __exoclaw_import_meta_url, $xoimp, $xolazy) {${source}\n})`, {
    filename: file,
    ...(cachedData !== undefined ? { cachedData } : {}),
  });
  const module = { exports: {} };
  const require = createRequire(file);
  const lazy = (id) => lazyBuiltin((spec) => requireBundled?.(spec) ?? require(spec), id);
  script.runInThisContext()(module.exports, require, module, file, dirname(file), pathToFileURL(file).href, importer, lazy);
  return { exports: module.exports, script, cacheWanted: cacheFile !== undefined && (cachedData === undefined || script.cachedDataRejected === true) };
}

/**
 * Node built-in modules that the host bundle loads on first use instead of when the module that
 * requires them is evaluated (scripts/bundle-host.mjs renames their `require(` to `$xolazy(`).
 *
 * Why: esbuild evaluates every module of the bundle at start-up, so a built-in required at the top
 * of any of them (commander's `child_process`, which brings `net` and `dgram`; `ws`'s and the
 * Prometheus push client's `http`/`https`/`tls`; `zlib`...) was compiled and run by every
 * `exoclaw` command, although a zero-config gateway uses none of them before it is ready. Not in
 * the list: what start-up uses anyway (`fs`, `path`, `stream`, `events`, `v8` and `perf_hooks` for
 * the heap mode, `os`, `url`, `util`). `crypto` is in it although the gateway's plugin hashes load
 * it before ready: every other command that hashes nothing (`--version`, `--help`...) skips it,
 * and the gateway loads it where the hashing is, not with the bundle. `worker_threads` is also
 * destructured at load by pino and thread-stream, whose lines the build patches
 * (scripts/bundle-host.mjs, deferWorkerThreads).
 */
const LAZY_BUILTINS = Object.freeze([
  "child_process",
  "http",
  "https",
  "http2",
  "tls",
  "net",
  "dgram",
  "dns",
  "zlib",
  "readline",
  "assert",
  "cluster",
  "querystring",
  "worker_threads",
  "crypto",
]);
exports.LAZY_BUILTINS = LAZY_BUILTINS;

/**
 * Packages the host bundle leaves out and loads on first use, from dist/nats.cjs (a bundle of
 * their own with its code cache, built by scripts/bundle-host.mjs; `require()` from node_modules
 * when it is missing). The NATS client (~350 KB of the 1.9 MB host bundle) serves only `[bus]`,
 * a `nats://` store and `exoclaw doctor`'s NATS check; read, deserialized and evaluated at every
 * start it cost a zero-config gateway ~10 % of its main-thread CPU to ready (issue 13).
 */
const BUNDLED_PACKAGES = Object.freeze(["@nats-io/jetstream", "@nats-io/kv", "@nats-io/obj", "@nats-io/transport-node"]);
exports.BUNDLED_PACKAGES = BUNDLED_PACKAGES;

/** dist/nats.cjs: the bundle of {@link BUNDLED_PACKAGES}; its `module.exports.require(specifier)` evaluates one package once. */
const PACKAGES_BUNDLE = join(DIST, "nats.cjs");
exports.PACKAGES_BUNDLE = PACKAGES_BUNDLE;

/** Built-ins callable as a function (`assert(...)`): their stand-in is a function. */
const CALLABLE_BUILTINS = new Set(["assert"]);

/**
 * A stand-in for a built-in module (or a package of {@link BUNDLED_PACKAGES}) that requires it at its first use: reading, writing or
 * enumerating a property, `in`, or (for `assert`) a call. The module's functions are called with
 * the stand-in as `this`, which Node's built-ins do not read. What a stand-in cannot make lazy it
 * loads at once, so code that reads the module at its own load (destructuring `require()`,
 * `class extends`) gets the same objects as from `require()`.
 * @param {(id: string) => any} requireFn the bundle's require
 * @param {string} id `node:NAME` or `NAME`, NAME in {@link LAZY_BUILTINS}, or a package of {@link BUNDLED_PACKAGES}
 * @returns {any} a Proxy standing for `requireFn(id)`
 * @throws nothing itself; the first use throws what `require(id)` throws
 */
function lazyBuiltin(requireFn, id) {
  let mod;
  const load = () => (mod ??= requireFn(id));
  const handler = {
    get: (_, key) => load()[key],
    set: (_, key, value) => Reflect.set(load(), key, value),
    has: (_, key) => key in load(),
    getPrototypeOf: () => Reflect.getPrototypeOf(load()),
  };
  if (CALLABLE_BUILTINS.has(id.replace(/^node:/, ""))) {
    return new Proxy(function lazyBuiltin() {}, { ...handler, apply: (_, self, args) => Reflect.apply(load(), self, args) });
  }
  return new Proxy(
    {},
    {
      ...handler,
      ownKeys: () => Reflect.ownKeys(load()),
      // Reported configurable: the stand-in's own (empty, extensible) target allows no other answer.
      getOwnPropertyDescriptor: (_, key) => {
        const d = Reflect.getOwnPropertyDescriptor(load(), key);
        return d === undefined ? undefined : { ...d, configurable: true };
      },
      defineProperty: (_, key, descriptor) => Reflect.defineProperty(load(), key, descriptor),
      deleteProperty: (_, key) => Reflect.deleteProperty(load(), key),
    },
  );
}

/**
 * Writes `script`'s code cache (the functions V8 compiled so far) to `cacheFile`, atomically
 * (a temporary file renamed over it: gateways may start together), mode 0644 whatever the umask
 * (the gateway runs with 077 for its state files; the cache is as readable as the bundle, for
 * every user of the install). Best effort: a read-only install keeps running without it.
 * @returns {boolean} whether it was written
 */
function writeCodeCache(script, cacheFile) {
  const tmp = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
    chmodSync(tmp, 0o644);
    renameSync(tmp, cacheFile);
    return true;
  } catch {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // nothing was written
    }
    return false;
  }
}

/**
 * A key of V8's version and current flags, for the provider bundles' cache file names.
 *
 * Why: V8 rejects a code cache made under other flags, and the gateway changes flags at run time
 * before it loads a provider (`[gateway] heap = "compact"`, host/src/cli/heap.ts), while other
 * commands (`exoclaw doctor`) keep V8's defaults. One cache file per flag set keeps each of them
 * valid instead of each run rejecting and rewriting the other's. The key is the header of a code
 * cache made now for a constant one-character script: V8 writes its version hash, the source hash
 * and the flag hash there (bytes 4-16). Were that layout to change, the key would still be the
 * same for the same V8 and flags (a cache V8 rejects is still written again): only the split
 * by flags would be lost. ~0.3 ms, once per process.
 * @returns {string} 24 hex digits
 */
function v8FlagsKey() {
  // Computed each time: flags change while the gateway runs (heap.ts switches one as the heap grows).
  return new Script("0", { filename: "exoclaw-v8-flags-probe" }).createCachedData().subarray(4, 16).toString("hex");
}

/** The code cache file of a provider bundle under V8's current flags ({@link v8FlagsKey}). */
function providerCacheFile(bundleFile) {
  return `${bundleFile}.${v8FlagsKey()}.cache`;
}

exports.providerBundleFile = providerBundleFile;
exports.runBundle = runBundle;
exports.writeCodeCache = writeCodeCache;
exports.v8FlagsKey = v8FlagsKey;
exports.providerCacheFile = providerCacheFile;
exports.lazyBuiltin = lazyBuiltin;
