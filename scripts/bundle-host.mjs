#!/usr/bin/env node
// Bundles the host (host/src, TypeScript) into dist/exoclaw.mjs with esbuild. One file loads in
// about half the time of ~100 separate modules, which is most of the gateway's start-up budget.
// The LLM SDKs stay external: they are imported lazily on the first model call. uWebSockets.js
// stays external because its native binary is loaded with require() at run time.
import { build } from "esbuild";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const t0 = performance.now();
// Bundled CommonJS dependencies call require(); give the ESM bundles one.
const banner = { js: "import { createRequire as __exoclawCreateRequire } from 'node:module'; const require = __exoclawCreateRequire(import.meta.url);" };
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
    // ajv: only `exoclaw plugin test` loads it; the gateway should not parse it at start-up.
    // @opentelemetry/*: loaded (dynamic import) only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    external: [
      "@trufflesuite/uws-js-unofficial",
      "@anthropic-ai/sdk",
      "openai",
      "ollama",
      "@google/genai",
      "ajv",
      "@opentelemetry/*",
      "@clack/prompts",
      "@modelcontextprotocol/sdk",
    ],
    banner,
  });
  // The plugin sandbox's worker thread script, self-contained (Extism, msgpackr) next to the
  // bundle: sandbox/pool.ts resolves it as new URL("./sandbox-worker.mjs", import.meta.url).
  await build({
    absWorkingDir: root,
    entryPoints: ["host/src/plugins/sandbox/sandbox-worker.mjs"],
    outfile: "dist/sandbox-worker.mjs",
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
    banner,
  });
} catch (err) {
  process.stderr.write(`bundle-host: esbuild failed: ${err.message}\n`);
  process.exit(1);
}
console.log(`bundled host -> dist/exoclaw.mjs, dist/sandbox-worker.mjs in ${Math.round(performance.now() - t0)} ms`);
