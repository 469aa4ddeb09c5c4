#!/usr/bin/env node
// Entry point of the `exoclaw` command; the host is bundled into dist/ by `npm install`.
// CommonJS (bin/package.json): Node runs a CommonJS entry without starting its ES module loader,
// which cost every start ~35 ms of CPU on the 2-core machine (issue 13, docs/operations.md).
"use strict";
const { existsSync } = require("node:fs");
const { join } = require("node:path");
const {
  BUNDLED_PACKAGES,
  DIST,
  PACKAGES_BUNDLE,
  PROVIDER_SPECIFIERS,
  providerBundleFile,
  providerCacheFile,
  runBundle,
  writeCodeCache,
} = require("./load-bundle.js");

// Extism imports node:wasi for WASI plugins; Node 20 flags it experimental on every start.
// exoclaw runs plugins without WASI, so that one warning is noise; every other warning stays.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === "string" ? rest[0] : rest[0]?.type;
  if (type === "ExperimentalWarning" && String(warning).includes("WASI")) return;
  return emitWarning.call(process, warning, ...rest);
};

const file = join(DIST, "exoclaw.cjs");
if (!existsSync(file)) {
  process.stderr.write("exoclaw: the host is not built (dist/exoclaw.cjs is missing). Run `npm install` or `npm run build` in the package root.\n");
  process.exit(1);
}

/** EXOCLAW_CODE_CACHE=0 compiles the bundles without their code caches, neither reading nor writing them (`train`: see loadHost). */
const useCache = process.env.EXOCLAW_CODE_CACHE !== "0";

/** @type {Map<string, Promise<unknown>>} import() of a provider package: one evaluation per process. */
const providerModules = new Map();

/**
 * The host's `import(specifier)` (the bundle calls it as `$xoimp`, see scripts/bundle-host.mjs).
 * The provider SDKs and undici (bin/load-bundle.js, PROVIDER_SPECIFIERS) come from their bundles in
 * dist/providers/, compiled with V8's code cache, as the same module namespace `import()` gives
 * (`default` and the named exports), once per process: every `import("@anthropic-ai/sdk")` of the
 * host gets the same classes (the SDK's own instanceof checks on its errors see one set). Anything else, and a
 * provider package whose bundle is missing (an older build), is a real import() from node_modules.
 * @param {string} specifier
 * @returns {Promise<any>} the module namespace; rejects as import() would (the package throws while evaluating)
 */
function importModule(specifier) {
  if (!PROVIDER_SPECIFIERS.includes(specifier)) return import(specifier);
  let loading = providerModules.get(specifier);
  if (loading === undefined) {
    loading = importProvider(specifier);
    providerModules.set(specifier, loading);
  }
  return loading;
}

/** {@link importModule} of a provider package: its bundle with the code cache of V8's current flags (load-bundle.js). */
async function importProvider(specifier) {
  const bundle = providerBundleFile(specifier);
  if (!existsSync(bundle)) return import(specifier);
  const cacheFile = useCache ? providerCacheFile(bundle) : undefined;
  const { exports, script, cacheWanted } = runBundle(bundle, cacheFile, importModule);
  // Back to the event loop between the compile (deserializing the cache) and the package's
  // evaluation, tens of ms each on a busy machine: a request waiting meanwhile is served in between.
  await new Promise((resolve) => setImmediate(resolve));
  const namespace = await exports.load();
  // Written now, with the package's evaluation compiled, not after a first call: V8 stamps a cache
  // with the flags of the moment it is made and checks them against those of the moment it is
  // read, and the gateway switches a heap flag once start-up grew the young generation
  // (host/src/cli/heap.ts): a cache made under other flags than the compile's is not written.
  if (cacheWanted && cacheFile !== undefined && providerCacheFile(bundle) === cacheFile) writeCodeCache(script, cacheFile);
  return namespace;
}

/** @type {{ exports: any, script: import("node:vm").Script, cacheFile: string | undefined, cacheWanted: boolean } | undefined} dist/nats.cjs once loaded */
let packages;

/**
 * The host's `require()` of a package of BUNDLED_PACKAGES (load-bundle.js), at its first use: from
 * dist/nats.cjs, compiled with the code cache of V8's current flags like a provider bundle (the
 * gateway may have switched a heap flag by then), the package evaluated once per process.
 * undefined (the host then requires it from node_modules) for any other specifier or when the
 * bundle is missing (an older build).
 * @param {string} specifier
 * @returns {unknown} the package's exports
 * @throws what evaluating the package throws
 */
function requireBundled(specifier) {
  if (!BUNDLED_PACKAGES.includes(specifier) || !existsSync(PACKAGES_BUNDLE)) return undefined;
  if (packages === undefined) {
    const cacheFile = useCache ? providerCacheFile(PACKAGES_BUNDLE) : undefined;
    packages = { ...runBundle(PACKAGES_BUNDLE, cacheFile, importModule), cacheFile };
  }
  const exported = packages.exports.require(specifier);
  // Written once, with the first package's evaluation compiled (see importProvider on why not later).
  if (packages.cacheWanted && packages.cacheFile !== undefined && providerCacheFile(PACKAGES_BUNDLE) === packages.cacheFile) {
    packages.cacheWanted = false;
    writeCodeCache(packages.script, packages.cacheFile);
  }
  return exported;
}

/**
 * Compiles and runs the host bundle (a CommonJS function body, scripts/bundle-host.mjs) with V8's
 * code cache in dist/exoclaw.cjs.cache: V8 then deserializes the compiled functions instead of
 * parsing and compiling ~2 MB of JavaScript at every start (Node 20 caches no ES module code).
 * A cache V8 rejects (a rebuilt bundle, another Node, a damaged file) means the bundle is compiled
 * as usual and the cache written again right after its top level ran. The cache lives next to the
 * bundle, never in a shared directory: it is code, as trusted as the bundle.
 *
 * `EXOCLAW_CODE_CACHE=train` (the build's scripts/host-cache.mjs, never an operator's setting)
 * writes the cache again when the process exits, holding every function the run compiled: a
 * gateway started to ready and stopped leaves a cache with its start-up path compiled, which the
 * next starts deserialize instead of compiling each of those functions lazily (issue 13).
 * @returns the bundle's exports (`main`)
 */
function loadHost() {
  const cacheFile = useCache ? `${file}.cache` : undefined;
  const { exports, script, cacheWanted } = runBundle(file, cacheFile, importModule, requireBundled);
  // The functions compiled so far: the bundle's top level.
  if (cacheWanted && cacheFile !== undefined) writeCodeCache(script, cacheFile);
  if (cacheFile !== undefined && process.env.EXOCLAW_CODE_CACHE === "train") {
    process.once("exit", () => {
      if (!writeCodeCache(script, cacheFile)) process.exitCode = 1;
    });
  }
  return exports;
}

const { main } = loadHost();
// A rejection is an unhandled one: Node prints it and exits 1, as the ES module's top-level await did.
main(process.argv);
