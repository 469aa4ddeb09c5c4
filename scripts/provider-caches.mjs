#!/usr/bin/env node
// Writes the code cache of every provider bundle in dist/providers/ (scripts/bundle-host.mjs) under
// the V8 flags given as arguments, set at run time as the gateway sets them (host/src/cli/heap.ts):
// `node scripts/provider-caches.mjs [--v8-flag...]`. Each bundle is loaded (its package evaluated,
// as at a first model call) before its cache is written, so the cache holds the compiled package.
import { setFlagsFromString } from "node:v8";
import { PROVIDER_SPECIFIERS, providerBundleFile, providerCacheFile, runBundle, writeCodeCache } from "../bin/load-bundle.js";

for (const flag of process.argv.slice(2)) setFlagsFromString(flag);
for (const specifier of PROVIDER_SPECIFIERS) {
  const file = providerBundleFile(specifier);
  const cacheFile = providerCacheFile(file);
  const { exports, script } = runBundle(file, undefined, (s) => import(s));
  await exports.load();
  if (!writeCodeCache(script, cacheFile)) {
    process.stderr.write(`provider-caches: cannot write ${cacheFile}\n`);
    process.exitCode = 1;
  }
}
