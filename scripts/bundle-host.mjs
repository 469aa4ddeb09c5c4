#!/usr/bin/env node
// Bundles the host (host/src, TypeScript) into dist/exoclaw.mjs with esbuild. One file loads in
// about half the time of ~100 separate modules, which is most of the gateway's start-up budget.
// The LLM SDKs stay external: they are imported lazily on the first model call. uWebSockets.js
// stays external because its native binary is loaded with require() at run time.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const t0 = performance.now();
try {
  await build({
    absWorkingDir: root,
    entryPoints: ["host/src/cli/main.ts"],
    outfile: "dist/exoclaw.mjs",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
    external: ["@trufflesuite/uws-js-unofficial", "@anthropic-ai/sdk", "openai", "ollama"],
    // Bundled CommonJS dependencies call require(); give the ESM bundle one.
    banner: { js: "import { createRequire as __exoclawCreateRequire } from 'node:module'; const require = __exoclawCreateRequire(import.meta.url);" },
  });
} catch (err) {
  process.stderr.write(`bundle-host: esbuild failed: ${err.message}\n`);
  process.exit(1);
}
console.log(`bundled host -> dist/exoclaw.mjs in ${Math.round(performance.now() - t0)} ms`);
