#!/usr/bin/env node
// Writes the code cache of every provider bundle in dist/providers/ (scripts/bundle-host.mjs) under
// the V8 flags given as arguments, set at run time as the gateway sets them (host/src/cli/heap.ts):
// `node scripts/provider-caches.mjs [--v8-flag...]`. Each bundle is loaded (its package evaluated,
// as at a first model call) before its cache is written, so the cache holds the compiled package.
// The same for dist/nats.cjs (the NATS client, BUNDLED_PACKAGES), every package of it required.
import { existsSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import {
  BUNDLED_PACKAGES,
  PACKAGES_BUNDLE,
  PROVIDER_SPECIFIERS,
  providerBundleFile,
  providerCacheFile,
  runBundle,
  writeCodeCache,
} from "../bin/load-bundle.js";

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
if (existsSync(PACKAGES_BUNDLE)) {
  const { exports, script } = runBundle(PACKAGES_BUNDLE, undefined, (s) => import(s));
  for (const specifier of BUNDLED_PACKAGES) exports.require(specifier);
  if (!writeCodeCache(script, providerCacheFile(PACKAGES_BUNDLE))) {
    process.stderr.write(`provider-caches: cannot write ${providerCacheFile(PACKAGES_BUNDLE)}\n`);
    process.exitCode = 1;
  }
}
