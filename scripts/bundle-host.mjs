#!/usr/bin/env node
// Bundles the host (host/src, TypeScript) into dist/exoclaw.cjs with esbuild. One file loads in
// about half the time of ~100 separate modules, which is most of the gateway's start-up budget.
// The LLM SDKs (and undici, their fetch: agent/providers/dispatcher-fetch.ts) stay external to it:
// the host imports them lazily, and they get bundles of their own in dist/providers/, which
// bin/exoclaw.js serves those import()s from (buildProviderBundles below). uWebSockets.js
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
//     exact), a function bin/exoclaw.js defines: the provider packages from dist/providers/,
//     anything else `import(s)`.
import { build } from "esbuild";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { BUNDLED_PACKAGES, LAZY_BUILTINS, PACKAGES_BUNDLE, PROVIDER_SPECIFIERS, providerBundleFile } from "../bin/load-bundle.js";
import { writeHostCache } from "./host-cache.mjs";

/**
 * esbuild options shared by the side bundles (dist/providers/*.cjs, dist/nats.cjs): CommonJS
 * script bodies loaded with a code cache by bin/load-bundle.js, like the host's.
 */
const SIDE_BUNDLE_OPTIONS = {
  bundle: true,
  platform: "node",
  format: "cjs",
  target: "node20",
  sourcemap: "linked",
  logLevel: "error",
  define: { "import.meta.url": "__exoclaw_import_meta_url" },
  minifyWhitespace: true,
  // Classes and functions keep their names (esbuild renames those that collide in the bundle's
  // one scope: `APIError2`): error names reach logs and the host's error mapping reads them.
  keepNames: true,
};

const root = fileURLToPath(new URL("..", import.meta.url));
/** The V8 flags the gateway sets by default at run time (`[gateway] heap = "compact"`, host/src/cli/heap.ts). */
const GATEWAY_V8_FLAGS = ["--heap-growing-percent=50"];
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
    // Source patches that keep `worker_threads` (and `stream`, which it loads) off the start path.
    plugins: [deferWorkerThreads()],
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
      // msgpackr's native string extraction (protocol/msgpack.mjs, loadNativeStrings): bundled, it
      // looked for its addon next to dist/exoclaw.cjs, never found it and decoded in JavaScript.
      "msgpackr-extract",
      // The NATS client: loaded on first use from dist/nats.cjs (buildPackagesBundle below).
      ...BUNDLED_PACKAGES,
    ],
  });
  if (hostBuild.warnings.some((w) => /import\.meta/.test(w.text))) {
    throw new Error("the host uses import.meta beyond import.meta.url, which the CommonJS bundle cannot give (see the warning above)");
  }
  asScriptBody(join(root, "dist/exoclaw.cjs"), { lazyBuiltins: true });
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
  // The provider SDKs, one bundle each (dist/providers/): see buildProviderBundles.
  await buildProviderBundles();
  // The NATS client, dist/nats.cjs: see buildPackagesBundle.
  await buildPackagesBundle();
  // The bundle's code cache, so that the first start uses it too: its top level (one run of
  // `exoclaw --version`), and once the first-party plugins are built, a gateway's start-up
  // compiled in it (scripts/host-cache.mjs; `npm run build` runs it again after the plugins).
  await writeHostCache(root);
  // And one load of each provider bundle writes theirs, under V8's default flags (the CLI's) and
  // under those of `[gateway] heap = "compact"` (the gateway's default: host/src/cli/heap.ts,
  // COMPACT_HEAP_FLAGS; tests/scripts/code-cache.test.ts checks the two lists agree).
  for (const flags of [[], GATEWAY_V8_FLAGS]) {
    execFileSync(process.execPath, ["scripts/provider-caches.mjs", ...flags], { cwd: root, stdio: "inherit" });
  }
} catch (err) {
  process.stderr.write(`bundle-host: esbuild failed: ${err.message}\n`);
  process.exit(1);
}
console.log(`bundled host -> dist/exoclaw.cjs, dist/sandbox-worker.mjs, dist/providers/ in ${Math.round(performance.now() - t0)} ms`);

/**
 * Two packages of the logger destructure `worker_threads` at their load, which a `$xolazy`
 * stand-in cannot defer (bin/load-bundle.js, lazyBuiltin): pino's `tools.js` (`isMainThread`,
 * read when the logger's stdout destination is built) and `thread-stream` (`Worker`, used only by
 * pino transports, which exoclaw does not configure). Every command then compiled `worker_threads`
 * and what it requires (`internal/worker/io` requires `stream`): ~10 ms of a gateway's start-up CPU
 * on the 2-core machine, although no worker starts before ready (the plugin sandboxes start theirs
 * at the first call). The patch: thread-stream reads `Worker` at its use; pino's `isMainThread` is
 * `true`, because this bundle only runs as the process's main script (bin/exoclaw.js; the plugin
 * sandbox workers run dist/sandbox-worker.mjs, which has no pino). pino reads it for one thing: to
 * flush its asynchronous stdout stream at process exit, which is what the main thread must do.
 * The build fails if a package update changed the patched lines (the patch would silently not apply).
 * @returns {import("esbuild").Plugin}
 */
function deferWorkerThreads() {
  return {
    name: "defer-worker-threads",
    setup(b) {
      const patches = [
        {
          file: /[\\/]node_modules[\\/]pino[\\/]lib[\\/]tools\.js$/,
          edits: [["const { isMainThread } = require('worker_threads')", "const isMainThread = true // exoclaw: main thread only (scripts/bundle-host.mjs)"]],
        },
        {
          file: /[\\/]node_modules[\\/]thread-stream[\\/]index\.js$/,
          edits: [
            [
              "const { Worker } = require('worker_threads')",
              "const workerThreads = require('worker_threads') // exoclaw: read at use (scripts/bundle-host.mjs)",
            ],
            ["new Worker(", "new workerThreads.Worker("],
          ],
        },
      ];
      for (const { file, edits } of patches) {
        b.onLoad({ filter: file }, (args) => {
          let contents = readFileSync(args.path, "utf8");
          for (const [from, to] of edits) {
            if (contents.split(from).length !== 2) throw new Error(`defer-worker-threads: "${from}" is not in ${args.path} exactly once (package updated?)`);
            contents = contents.replace(from, to);
          }
          return { contents, loader: "js" };
        });
      }
    },
  };
}

/**
 * Rewrites an esbuild CommonJS output file into the script body bin/load-bundle.js compiles:
 * ASCII only, so that it is read as latin1 (a plain byte copy; UTF-8 decoding 2.5 MB with a few
 * non-ASCII characters costs tens of ms at every start), and every dynamic `import(` renamed
 * `$xoimp(` (the same length: the source map stays exact). esbuild escapes strings and templates
 * already; what is left is in comments and regular expressions, where \\uXXXX means the same
 * character. With `lazyBuiltins`, every `require("X")` / `require("node:X")` of a built-in of
 * LAZY_BUILTINS, and every `require()` of a package of BUNDLED_PACKAGES (bin/load-bundle.js), is
 * renamed `$xolazy(` (the same length again): the module loads at its first use, not when the
 * bundle is evaluated.
 */
function asScriptBody(file, { lazyBuiltins = false } = {}) {
  const code = readFileSync(file, "utf8");
  const ascii = code.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
  // Not preceded by an identifier character or a dot: `import(` as an expression, never `x.import(`.
  let body = ascii.replace(/(?<![\w$.])import\(/g, () => "$xoimp(");
  if (lazyBuiltins) {
    const names = [...LAZY_BUILTINS.map((b) => `(?:node:)?${b}`), ...BUNDLED_PACKAGES].map((n) => n.replace(/[/]/g, "\\/"));
    const lazy = new RegExp(`(?<![\\w$.])require\\((?="(?:${names.join("|")})")`, "g");
    body = body.replace(lazy, () => "$xolazy(");
  }
  writeFileSync(file, body);
}

/**
 * Bundles each package of PROVIDER_SPECIFIERS (bin/load-bundle.js) into dist/providers/<name>.cjs,
 * a script body like the host's whose `module.exports.load()` returns what `import(specifier)`
 * would (the module namespace: `default` and the named exports), evaluating the package at the
 * first call only. bin/exoclaw.js serves the host's `import(specifier)` from it with V8's code
 * cache: an ES module from node_modules has none on Node 20, and the SDKs are hundreds of files.
 * One bundle per package, so that a gateway using one provider reads and deserializes that one
 * only. Left external (loaded by require from node_modules when a package needs them, as the host
 * bundle's own dependencies do): `@opentelemetry/*` (`@anthropic-ai/sdk` imports
 * `@opentelemetry/api`, whose state is global by design: one provider with the host's), `ws`
 * (openai's and @google/genai's realtime clients; the host bundles its own copy for channel
 * connections, and the two never exchange sockets), the optional peers of openai (AWS signing).
 */
async function buildProviderBundles() {
  rmSync(join(root, "dist/providers"), { recursive: true, force: true });
  mkdirSync(join(root, "dist/providers"), { recursive: true });
  for (const specifier of PROVIDER_SPECIFIERS) {
    const outfile = providerBundleFile(specifier);
    const result = await build({
      absWorkingDir: root,
      // An .mjs entry: esbuild then gives a CommonJS package Node's import() shape (`default` = module.exports).
      stdin: {
        contents: `export const load = () => import(${JSON.stringify(specifier)});\n`,
        resolveDir: root,
        sourcefile: "provider-entry.mjs",
        loader: "js",
      },
      outfile,
      ...SIDE_BUNDLE_OPTIONS,
      external: ["ws", "@aws-sdk/*", "@smithy/*", "zod", "zod/*", "@modelcontextprotocol/sdk", "@modelcontextprotocol/sdk/*"],
    });
    for (const w of result.warnings) process.stderr.write(`bundle-host: ${specifier}: ${w.text}\n`);
    asScriptBody(outfile);
  }
}

/**
 * Bundles the packages of BUNDLED_PACKAGES (bin/load-bundle.js: the NATS client) into
 * dist/nats.cjs, a script body like the host's whose `module.exports.require(specifier)` returns
 * what `require(specifier)` would, evaluating that package (and what it needs) at its first call
 * only. bin/exoclaw.js serves the host's `require()` of them from it, with its code cache (one per
 * V8 flag set, written by scripts/provider-caches.mjs like the provider bundles').
 */
async function buildPackagesBundle() {
  // Caches of an earlier build: V8 checks a cache against the source's length, not its content.
  for (const f of readdirSync(join(root, "dist"))) if (/^nats\.cjs\..+\.cache$/.test(f)) rmSync(join(root, "dist", f), { force: true });
  const cases = BUNDLED_PACKAGES.map((p) => `    case ${JSON.stringify(p)}: return require(${JSON.stringify(p)});`).join("\n");
  const result = await build({
    absWorkingDir: root,
    stdin: {
      contents: `exports.require = (specifier) => {\n  switch (specifier) {\n${cases}\n    default: throw new Error("not in dist/nats.cjs: " + specifier);\n  }\n};\n`,
      resolveDir: root,
      sourcefile: "packages-entry.cjs",
      loader: "js",
    },
    outfile: PACKAGES_BUNDLE,
    ...SIDE_BUNDLE_OPTIONS,
  });
  for (const w of result.warnings) process.stderr.write(`bundle-host: nats: ${w.text}\n`);
  asScriptBody(PACKAGES_BUNDLE);
}
