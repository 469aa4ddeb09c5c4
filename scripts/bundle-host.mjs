#!/usr/bin/env node
// Bundles the host (host/src, TypeScript) into dist/exoclaw.cjs with esbuild. One file loads in
// about half the time of ~100 separate modules, which is most of the gateway's start-up budget.
// The LLM SDKs (and undici, their fetch: agent/providers/dispatcher-fetch.ts) stay external: they
// are imported lazily on the first model call. uWebSockets.js
// stays external because its native binary is loaded with require() at run time.
//
// The bundle is a CommonJS function body, not an ES module, so that bin/exoclaw.js can compile it
// with V8's code cache (`vm.Script` + `cachedData`; Node 20 has no code cache for ES modules and
// no `module.enableCompileCache`): see bin/exoclaw.js and docs/operations.md, "Start-up time".
// Two things an ES module has and a script does not are passed in by bin/exoclaw.js:
//   - `import.meta.url` (esbuild `define` -> the parameter `__exoclaw_import_meta_url`);
//   - dynamic `import()`: Node 20 drops a script's import() callback when the script comes
//     from the code cache ("A dynamic import callback was not specified"), so every `import(`
//     in the output is renamed to the parameter `$xoimp(` (same length: the source map stays
//     exact), a function bin/exoclaw.js defines as `(s) => import(s)`.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const t0 = performance.now();
// Bundled CommonJS dependencies call require(); give the ESM bundle (the sandbox worker) one.
const banner = { js: "import { createRequire as __exoclawCreateRequire } from 'node:module'; const require = __exoclawCreateRequire(import.meta.url);" };
try {
  const hostBuild = await build({
    absWorkingDir: root,
    entryPoints: ["host/src/cli/main.ts"],
    outfile: "dist/exoclaw.cjs",
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    sourcemap: "linked",
    logLevel: "warning",
    define: { "import.meta.url": "__exoclaw_import_meta_url" },
    // Whitespace and comments only (names and syntax stay, so stack traces name the functions;
    // the linked source map gives the lines): 2.8 -> 1.9 MB, and reading the bundle and handing
    // it to V8 with its code cache is part of every start (issue 13: ~63 -> ~35 ms at load 9).
    minifyWhitespace: true,
    // ajv: only `exoclaw plugin test` loads it; the gateway should not parse it at start-up.
    // @opentelemetry/*: loaded (dynamic import) only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
    external: [
      "@trufflesuite/uws-js-unofficial",
      "@anthropic-ai/sdk",
      "undici",
      "openai",
      "ollama",
      "@google/genai",
      "ajv",
      "@opentelemetry/*",
      "@clack/prompts",
      "@modelcontextprotocol/sdk",
    ],
  });
  if (hostBuild.warnings.some((w) => /import\.meta/.test(w.text))) {
    throw new Error("the host uses import.meta beyond import.meta.url, which the CommonJS bundle cannot give (see the warning above)");
  }
  const out = join(root, "dist/exoclaw.cjs");
  const code = readFileSync(out, "utf8");
  // Not preceded by an identifier character or a dot: `import(` as an expression, never `x.import(`.
  // ASCII only, so that bin/exoclaw.js reads it as latin1 (a plain byte copy; UTF-8 decoding 2.5 MB
  // with a few non-ASCII characters costs tens of ms at every start). esbuild escapes strings and
  // templates already; what is left is in comments and regular expressions, where \uXXXX means
  // the same character.
  const ascii = code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  writeFileSync(
    out,
    ascii.replace(/(?<![\w$.])import\(/g, () => "$xoimp("),
  );
  // The ES module bundle of earlier versions, if a build left one: bin/exoclaw.js no longer reads it.
  rmSync(join(root, "dist/exoclaw.mjs"), { force: true });
  rmSync(join(root, "dist/exoclaw.mjs.map"), { force: true });
  // A code cache of an earlier build would be rejected by V8 (the source changed); drop it.
  rmSync(join(root, "dist/exoclaw.cjs.cache"), { force: true });
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
  // One run of the bundle writes its code cache (bin/exoclaw.js), so that the first start uses it too.
  execFileSync(process.execPath, ["bin/exoclaw.js", "--version"], { cwd: root, stdio: "ignore" });
} catch (err) {
  process.stderr.write(`bundle-host: esbuild failed: ${err.message}\n`);
  process.exit(1);
}
console.log(`bundled host -> dist/exoclaw.cjs, dist/sandbox-worker.mjs in ${Math.round(performance.now() - t0)} ms`);
