#!/usr/bin/env node
// Builds every first-party plugin: plugins/{tools,channels}/<dir>/assembly/index.ts is compiled
// with the AssemblyScript compiler (in-process, no Cargo/Rust toolchain), and the manifest from
// plugin.toml is embedded as the `exoclaw.manifest` custom section.
// Output: build/plugins/<name>.wasm.  Usage: node scripts/build-plugins.mjs [name ...]
// With --fixtures: the test fixtures plugins/fixtures/<dir> instead, into build/fixtures/.

import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { parse as parseToml } from "smol-toml";
import { embedManifest, manifestFromToml, validateManifest } from "./lib/manifest-section.mjs";

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const PLUGIN_GROUPS = ["plugins/tools", "plugins/channels"];
const FIXTURE_GROUPS = ["plugins/fixtures"];
const SDK_PACKAGE = "@exoclaw/plugin-sdk";
// Internal AssemblyScript name of the SDK's abort handler (see plugin-sdk/assembly/abort.ts).
const ABORT_HANDLER = `~lib/${SDK_PACKAGE}/assembly/abort/exoclawAbort`;
// The Extism kernel and exoclaw's own host functions (capability-gated at run time).
const ALLOWED_IMPORT_MODULES = ["extism:host/env", "exoclaw:host/v1"];
// 16 MiB unless plugin.toml says otherwise ([build] max_memory_pages): a runaway plugin then
// fails its own allocation instead of growing the gateway's memory.
const DEFAULT_MAX_MEMORY_PAGES = 256;

/** Raised by `buildPlugins` when at least one plugin failed; `failures` names each. */
export class PluginBuildError extends Error {
  /**
   * @param {Array<{name: string, dir: string, message: string}>} failures
   */
  constructor(failures) {
    super(failures.map((f) => `plugin "${f.name}" (${f.dir}) failed to build:\n${f.message.trimEnd()}`).join("\n\n"));
    this.name = "PluginBuildError";
    this.failures = failures;
  }
}

/**
 * Plugin source directories (those holding a plugin.toml), sorted, relative to `root`.
 * @param {string} root
 * @param {string[]} groups parent directories to scan, relative to `root`
 * @returns {Promise<string[]>}
 */
export async function findPluginDirs(root = REPO_ROOT, groups = PLUGIN_GROUPS) {
  const dirs = [];
  for (const group of groups) {
    let entries;
    try {
      entries = await readdir(path.join(root, group), { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries) {
      if (e.isDirectory() && existsSync(path.join(root, group, e.name, "plugin.toml"))) {
        dirs.push(path.join(group, e.name));
      }
    }
  }
  return dirs.sort();
}

/** Re-exported for compatibility: plugin.toml -> manifest lives in lib/manifest-section.mjs. */
export { manifestFromToml };

/**
 * One compiler diagnostic, as parsed from the AssemblyScript compiler's report.
 * @typedef {object} Diagnostic
 * @property {"error" | "warning" | "info"} severity
 * @property {number | null} code     the TS/AS diagnostic code (e.g. 2304), null if unknown
 * @property {string} message
 * @property {string | null} file     path as the compiler saw it, relative to the build root
 *                                    (`~lib/...` for library and SDK files), null if unknown
 * @property {number | null} line     1-based
 * @property {number | null} column   1-based
 * @property {string} excerpt         the compiler's source excerpt (may be empty)
 */

/** Raised by `buildPlugin` when the compiler reports errors; `diagnostics` has each one. */
export class PluginCompileError extends Error {
  /**
   * @param {Diagnostic[]} diagnostics
   * @param {string} text the diagnostics formatted as `file:line:column: error TS1234: message`
   */
  constructor(diagnostics, text) {
    super(text);
    this.name = "PluginCompileError";
    this.diagnostics = diagnostics;
  }
}

const SEVERITIES = { ERROR: "error", WARNING: "warning", INFO: "info", PEDANTIC: "info" };

/**
 * Parses the AssemblyScript compiler's text report into diagnostics. Each block looks like
 * `ERROR TS2304: Cannot find name 'foo'.` + an excerpt + `└─ in assembly/index.ts(4,24)`.
 * @param {string} report
 * @returns {Diagnostic[]}
 */
export function parseDiagnostics(report) {
  const out = [];
  for (const block of report.split(/\r?\n\s*\r?\n/)) {
    const lines = block.split(/\r?\n/).filter((l) => l.trim() !== "");
    const head = /^(ERROR|WARNING|INFO|PEDANTIC)(?: (?:TS|AS)(\d+))?: (.*)$/.exec(lines[0]?.trim() ?? "");
    if (!head) continue;
    let file = null;
    let line = null;
    let column = null;
    const excerpt = [];
    for (const l of lines.slice(1)) {
      const at = /in (.+)\((\d+),(\d+)\)\s*$/.exec(l);
      if (at && file === null) {
        file = at[1];
        line = Number(at[2]);
        column = Number(at[3]);
      } else if (!at) {
        excerpt.push(l);
      }
    }
    out.push({
      severity: /** @type {"error" | "warning" | "info"} */ (SEVERITIES[head[1]]),
      code: head[2] !== undefined ? Number(head[2]) : null,
      message: head[3],
      file,
      line,
      column,
      excerpt: excerpt.join("\n"),
    });
  }
  return out;
}

/**
 * Formats diagnostics the way editors and terminals link them: `file:line:column: error TS2304:
 * message`, then the compiler's excerpt indented.
 * @param {Diagnostic[]} diagnostics
 * @param {(file: string) => string} [showPath] maps the compiler's path for display (default: as is)
 * @returns {string}
 */
export function formatDiagnostics(diagnostics, showPath = (f) => f) {
  return diagnostics
    .map((d) => {
      const where = d.file === null ? "" : `${showPath(d.file)}:${d.line}:${d.column}: `;
      const code = d.code === null ? "" : ` TS${d.code}`;
      const excerpt = d.excerpt ? `\n${d.excerpt.replace(/^/gm, "  ")}` : "";
      return `${where}${d.severity}${code}: ${d.message}${excerpt}`;
    })
    .join("\n");
}

let defaultAsc = null;

/**
 * The AssemblyScript compiler API (`assemblyscript/asc`), loaded on first use.
 * @returns {Promise<typeof import("assemblyscript/asc")>}
 */
function loadAsc() {
  defaultAsc ??= import("assemblyscript/asc");
  return defaultAsc;
}

/**
 * Compiles one plugin directory and embeds its manifest. Does not write anything.
 * @param {string} dir plugin directory relative to `root` (`"."` for `root` itself)
 * @param {string} root build root: the compiler's base directory, and where `node_modules`
 *   lookup for `@exoclaw/plugin-sdk` starts (walking up from the plugin directory)
 * @param {{asc?: typeof import("assemblyscript/asc"), paths?: string[]}} [options]
 *   `asc`: the compiler module to use (default: this package's `assemblyscript`);
 *   `paths`: extra directories searched for packages after `node_modules` (asc `--path`),
 *   e.g. a `node_modules` that holds `@exoclaw/plugin-sdk` when the plugin's own does not.
 * @returns {Promise<{name: string, wasm: Uint8Array, manifest: Record<string, unknown>, warnings: Diagnostic[]}>}
 * @throws {PluginCompileError} with the compiler's diagnostics (paths relative to `root`);
 *   {Error} for manifest problems, a missing entry file or a module the host would refuse.
 */
export async function buildPlugin(dir, root = REPO_ROOT, options = {}) {
  const tomlPath = path.join(root, dir, "plugin.toml");
  let toml;
  try {
    toml = parseToml(await readFile(tomlPath, "utf8"));
  } catch (err) {
    throw new Error(`${path.join(dir, "plugin.toml")}: ${err instanceof Error ? err.message : err}`);
  }
  const manifest = manifestFromToml(toml);
  const problems = validateManifest(manifest);
  if (problems.length > 0) {
    throw new Error(`${path.join(dir, "plugin.toml")}: invalid manifest:\n  ${problems.join("\n  ")}`);
  }

  const entry = path.join(dir, "assembly", "index.ts");
  if (!existsSync(path.join(root, entry))) throw new Error(`missing entry file ${entry}`);
  const maxPages = toml.build?.max_memory_pages ?? DEFAULT_MAX_MEMORY_PAGES;
  const asc = options.asc ?? (await loadAsc());

  let binary = null;
  const stdout = asc.createMemoryStream();
  const stderr = asc.createMemoryStream();
  const result = await asc.main(
    [
      entry,
      "--baseDir",
      root,
      "--outFile",
      `${manifest.name}.wasm`,
      // -O3, not -Os: with a shrink level above 0 and the minimal (or stub) runtime,
      // AssemblyScript 0.28's Array<string>#join over a few hundred strings requests megabytes
      // and runs the plugin out of memory (measured: 1,000 x "ab" joined -> 8 MiB of pages).
      "-O3",
      "--runtime",
      "minimal",
      "--use",
      `abort=${ABORT_HANDLER}`,
      "--maximumMemory",
      String(maxPages),
      "--noColors",
      ...(options.paths ?? []).flatMap((p) => ["--path", p]),
    ],
    {
      stdout,
      stderr,
      // Keep the binary in memory: the manifest still has to be appended before writing.
      writeFile: (name, contents) => {
        if (name.endsWith(".wasm") && typeof contents !== "string") binary = contents;
      },
    },
  );
  const report = stderr.toString().trim();
  const diagnostics = parseDiagnostics(report);
  if (result.error) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    let text = errors.length > 0 ? formatDiagnostics(errors) : report.length > 0 ? report : String(result.error.message ?? result.error);
    if (report.includes("AS111") && report.includes("exoclawAbort")) {
      text += `\nhint: the plugin must import ${SDK_PACKAGE} (its abort handler is linked in), e.g. \`import { runTool } from "${SDK_PACKAGE}/assembly";\``;
    }
    if (/TS6054|File '~lib\/@exoclaw\/plugin-sdk/.test(report)) {
      text += `\nhint: ${SDK_PACKAGE} was not found; install it (npm install) or build from a directory that can see it`;
    }
    throw new PluginCompileError(errors, text);
  }
  if (binary === null) throw new Error("the compiler produced no binary");

  // Deny by default starts at build time: anything but the Extism kernel (WASI, env.abort,
  // env.seed from Math.random, env.trace ...) would be refused by the host anyway.
  const mod = await WebAssembly.compile(binary);
  const foreign = WebAssembly.Module.imports(mod).filter((i) => !ALLOWED_IMPORT_MODULES.includes(i.module));
  if (foreign.length > 0) {
    throw new Error(
      `imports outside ${ALLOWED_IMPORT_MODULES.map((m) => `"${m}"`).join(" and ")} are not allowed: ` +
        foreign.map((i) => `${i.module}.${i.name}`).join(", ") +
        (foreign.some((i) => i.name === "seed") ? " (env.seed comes from Math.random: use randomBytes from the SDK, capability 'random')" : ""),
    );
  }
  const exports = new Set(WebAssembly.Module.exports(mod).map((e) => e.name));
  if ((manifest.kind === "both" || (manifest.kind === "tool" && manifest.tools.length > 0)) && !exports.has("call")) {
    throw new Error(`a "${manifest.kind}" plugin must export "call" (export function call(): i32)`);
  }
  for (const hook of manifest.capabilities?.hooks ?? []) {
    if (!exports.has(hook)) throw new Error(`the plugin requests hook "${hook}" but does not export it (export function ${hook}(): i32)`);
  }
  return {
    name: manifest.name,
    wasm: embedManifest(binary, manifest),
    manifest,
    warnings: diagnostics.filter((d) => d.severity !== "error"),
  };
}

/**
 * Builds all plugins (or those named in `only`) into `outDir`.
 * @param {{root?: string, outDir?: string, only?: string[], log?: (line: string) => void, fixtures?: boolean}} [options]
 *   `root` defaults to the repository root, `outDir` to `<root>/build/plugins`, `log` to
 *   console.log (pass `() => {}` to silence). `fixtures`: build plugins/fixtures/* instead,
 *   into `<root>/build/fixtures` by default.
 * @returns {Promise<Array<{name: string, dir: string, path: string, bytes: number, ms: number}>>}
 * @throws {PluginBuildError} after trying every plugin, if any failed.
 */
export async function buildPlugins(options = {}) {
  const root = options.root ?? REPO_ROOT;
  const outDir = options.outDir ?? path.join(root, "build", options.fixtures ? "fixtures" : "plugins");
  const log = options.log ?? ((line) => console.log(line));
  if (!existsSync(path.join(root, "node_modules", SDK_PACKAGE, "assembly", "index.ts"))) {
    throw new PluginBuildError([
      {
        name: "*",
        dir: "plugin-sdk",
        message: `${SDK_PACKAGE} is not linked into node_modules; run \`npm install\` at the repository root`,
      },
    ]);
  }
  let dirs = await findPluginDirs(root, options.fixtures ? FIXTURE_GROUPS : PLUGIN_GROUPS);
  if (options.only && options.only.length > 0) {
    const wanted = new Set(options.only);
    dirs = dirs.filter((d) => wanted.has(path.basename(d)));
  }
  await mkdir(outDir, { recursive: true });

  const built = [];
  const failures = [];
  const names = new Map();
  for (const dir of dirs) {
    const t0 = performance.now();
    try {
      const { name, wasm } = await buildPlugin(dir, root);
      if (names.has(name)) throw new Error(`plugin name "${name}" is already used by ${names.get(name)}`);
      names.set(name, dir);
      const out = path.join(outDir, `${name}.wasm`);
      await writeFile(out, wasm);
      const ms = Math.round(performance.now() - t0);
      built.push({ name, dir, path: out, bytes: wasm.length, ms });
      log(`${name.padEnd(20)} ${String(wasm.length).padStart(8)} bytes ${String(ms).padStart(6)} ms  ${path.relative(root, out)}`);
    } catch (err) {
      failures.push({ name: path.basename(dir), dir, message: err instanceof Error ? err.message : String(err) });
    }
  }
  if (failures.length > 0) throw new PluginBuildError(failures);
  return built;
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  const t0 = performance.now();
  try {
    const args = process.argv.slice(2);
    const fixtures = args.includes("--fixtures");
    const built = await buildPlugins({ only: args.filter((a) => a !== "--fixtures"), fixtures });
    console.log(`built ${built.length} plugin(s) in ${Math.round(performance.now() - t0)} ms`);
  } catch (err) {
    console.error(`build-plugins: ${err instanceof Error ? err.message : err}`);
    process.exitCode = 1;
  }
}
