#!/usr/bin/env node
// Entry point of the `exoclaw` command; the host is bundled into dist/ by `npm install`.
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Script } from "node:vm";

// Extism imports node:wasi for WASI plugins; Node 20 flags it experimental on every start.
// exoclaw runs plugins without WASI, so that one warning is noise; every other warning stays.
const emitWarning = process.emitWarning;
process.emitWarning = function (warning, ...rest) {
  const type = typeof rest[0] === "string" ? rest[0] : rest[0]?.type;
  if (type === "ExperimentalWarning" && String(warning).includes("WASI")) return;
  return emitWarning.call(process, warning, ...rest);
};

const file = fileURLToPath(new URL("../dist/exoclaw.cjs", import.meta.url));
if (!existsSync(file)) {
  process.stderr.write("exoclaw: the host is not built (dist/exoclaw.cjs is missing). Run `npm install` or `npm run build` in the package root.\n");
  process.exit(1);
}

/**
 * Compiles and runs the host bundle (a CommonJS function body, scripts/bundle-host.mjs) with V8's
 * code cache in dist/exoclaw.cjs.cache: V8 then deserializes the compiled functions instead of
 * parsing and compiling ~2.5 MB of JavaScript at every start (Node 20 caches no ES module code).
 * V8 checks the cache against the source and its own version and flags, and rejects one that does
 * not match (a rebuilt bundle, another Node): the bundle is then compiled as usual and the cache
 * written again. The cache lives next to the bundle, never in a shared directory: it is code, as
 * trusted as the bundle. Writing it is best effort (a read-only install keeps the build's cache).
 * EXOCLAW_CODE_CACHE=0 compiles without it.
 * @returns the bundle's exports (`main`)
 */
function loadHost() {
  const cacheFile = `${file}.cache`;
  const useCache = process.env.EXOCLAW_CODE_CACHE !== "0";
  let cachedData;
  if (useCache) {
    try {
      cachedData = readFileSync(cacheFile);
    } catch {
      // no cache yet
    }
  }
  // The build writes it in ASCII (scripts/bundle-host.mjs): latin1 is a plain copy, no UTF-8 decoding.
  const source = readFileSync(file, "latin1");
  // Parameters: what a CommonJS module gets, plus import.meta.url and import() (see bundle-host.mjs).
  const script = new Script(`(function (exports, require, module, __filename, __dirname, __exoclaw_import_meta_url, $xoimp) {${source}\n})`, {
    filename: file,
    ...(cachedData !== undefined ? { cachedData } : {}),
  });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dirname(file), pathToFileURL(file).href, (specifier) => import(specifier));
  if (useCache && (cachedData === undefined || script.cachedDataRejected)) {
    // The functions compiled so far: the bundle's top level. Written atomically (gateways may start together).
    const tmp = `${cacheFile}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, script.createCachedData(), { mode: 0o644 });
      renameSync(tmp, cacheFile);
    } catch {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // nothing was written
      }
    }
  }
  return module.exports;
}

const { main } = loadHost();
await main(process.argv);
