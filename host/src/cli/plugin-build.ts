// `exoclaw plugin build [dir]`: compiles a plugin project with the AssemblyScript compiler and
// embeds its manifest, exactly as `npm run build:plugins` does for first-party plugins (same
// code: scripts/build-plugins.mjs), into <dir>/build/<name>.wasm.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";
import type { Command } from "commander";
import { PACKAGE_ROOT } from "../paths.js";
import { sha256Hex } from "../plugins/index.js";
import type { CliIo } from "./io.js";

type BuildScript = typeof import("../../../scripts/build-plugins.mjs");
type Diagnostic = import("../../../scripts/build-plugins.mjs").Diagnostic;

const SDK = "@exoclaw/plugin-sdk";

/** What `exoclaw plugin build` produced. */
export interface BuildProjectResult {
  name: string;
  version: string;
  /** Absolute path of the written module. */
  path: string;
  bytes: number;
  sha256: string;
  ms: number;
  /** Compiler warnings, formatted `file:line:column: warning ...`. */
  warnings: string[];
  /** Capabilities the manifest requests (names), empty for pure computation. */
  capabilities: string[];
  /** Where the SDK and the compiler were found. */
  sdkFrom: string;
  compilerFrom: string;
}

/** A build that failed; `diagnostics` holds the compiler's errors when there were any. */
export class PluginProjectBuildError extends Error {
  constructor(
    message: string,
    readonly diagnostics: Diagnostic[] = [],
  ) {
    super(message);
    this.name = "PluginProjectBuildError";
  }
}

/** `<dir>/node_modules/<pkg>` for `dir` and each parent of it, the first that has a package.json. */
function findPackage(from: string, pkg: string): string | null {
  let dir = path.resolve(from);
  for (;;) {
    const candidate = path.join(dir, "node_modules", ...pkg.split("/"));
    if (existsSync(path.join(candidate, "package.json"))) return candidate;
    const up = path.dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** The file an ESM package exports at `subpath` (conditions: import, default). */
function exportFile(pkgDir: string, subpath: string): string {
  const pkg = JSON.parse(readFileSync(path.join(pkgDir, "package.json"), "utf8")) as { exports?: Record<string, unknown> };
  const entry = pkg.exports?.[subpath];
  const target =
    typeof entry === "string"
      ? entry
      : typeof entry === "object" && entry !== null
        ? ((entry as Record<string, unknown>)["import"] ?? (entry as Record<string, unknown>)["default"])
        : undefined;
  if (typeof target !== "string") throw new Error(`${pkgDir} does not export "${subpath}"`);
  return path.join(pkgDir, target);
}

let buildScript: Promise<BuildScript> | null = null;

/**
 * scripts/build-plugins.mjs, loaded at run time from the package root (a computed URL, so the
 * host bundle does not inline it, nor the compiler it loads).
 */
function loadBuildScript(): Promise<BuildScript> {
  buildScript ??= import(pathToFileURL(path.join(PACKAGE_ROOT, "scripts", "build-plugins.mjs")).href) as Promise<BuildScript>;
  return buildScript;
}

function capabilityNames(manifest: Record<string, unknown>): string[] {
  const caps = manifest["capabilities"];
  return typeof caps === "object" && caps !== null && !Array.isArray(caps) ? Object.keys(caps) : [];
}

/**
 * Builds the plugin project in `dir` (a directory with plugin.toml and assembly/index.ts) into
 * `<dir>/build/<name>.wasm`. The SDK and the compiler are taken from the project's
 * `node_modules` (or a parent's), else from exoclaw's own installation.
 * @param dir project directory; default the current directory
 * @param cwd paths in messages are shown relative to this directory
 * @throws PluginProjectBuildError with `file:line:column: error TS...` lines for compiler errors,
 *   or the manifest / module problem
 */
export async function buildPluginProject(dir = ".", cwd = process.cwd()): Promise<BuildProjectResult> {
  const t0 = performance.now();
  const root = path.resolve(dir);
  if (!existsSync(path.join(root, "plugin.toml"))) {
    throw new PluginProjectBuildError(`${root}: no plugin.toml here (create a project with \`exoclaw plugin new <name>\`)`);
  }
  const compilerDir = findPackage(root, "assemblyscript") ?? findPackage(PACKAGE_ROOT, "assemblyscript");
  if (compilerDir === null) {
    throw new PluginProjectBuildError(`the AssemblyScript compiler is not installed: run \`npm install --save-dev assemblyscript\` in ${root}`);
  }
  const ownSdk = findPackage(root, SDK);
  const paths: string[] = [];
  let sdkFrom = ownSdk;
  if (ownSdk === null) {
    const fallback = findPackage(PACKAGE_ROOT, SDK);
    if (fallback === null) throw new PluginProjectBuildError(`${SDK} is not installed: run \`npm install --save-dev ${SDK}\` in ${root}`);
    // asc's --path takes directories that hold packages, like node_modules.
    paths.push(path.dirname(path.dirname(fallback)));
    sdkFrom = fallback;
  }
  const asc = await import(pathToFileURL(exportFile(compilerDir, "./asc")).href);
  const script = await loadBuildScript();
  const show = (file: string): string => (file.startsWith("~lib/") ? file : path.relative(cwd, path.join(root, file)) || file);
  let built: Awaited<ReturnType<BuildScript["buildPlugin"]>>;
  try {
    built = await script.buildPlugin(".", root, { asc, paths });
  } catch (err) {
    if (err instanceof script.PluginCompileError && err.diagnostics.length > 0) {
      const n = err.diagnostics.length;
      const hints = err.message.split("\n").filter((l) => l.startsWith("hint: "));
      throw new PluginProjectBuildError(
        `${script.formatDiagnostics(err.diagnostics, show)}\n${[...hints, `${n} compile error${n === 1 ? "" : "s"}`].join("\n")}`,
        err.diagnostics,
      );
    }
    throw new PluginProjectBuildError((err as Error).message);
  }
  const out = path.join(root, "build", `${built.name}.wasm`);
  await mkdir(path.dirname(out), { recursive: true });
  const tmp = path.join(path.dirname(out), `.${path.basename(out)}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, built.wasm);
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return {
    name: built.name,
    version: String(built.manifest["version"]),
    path: out,
    bytes: built.wasm.length,
    sha256: sha256Hex(built.wasm),
    ms: Math.round(performance.now() - t0),
    warnings: built.warnings.length > 0 ? script.formatDiagnostics(built.warnings, show).split("\n") : [],
    capabilities: capabilityNames(built.manifest),
    sdkFrom: sdkFrom ?? "",
    compilerFrom: compilerDir,
  };
}

/** Adds `exoclaw plugin build` to the `plugin` command. */
export function registerPluginBuild(plugin: Command, io: CliIo, fail: (err: unknown) => void): void {
  plugin
    .command("build [dir]")
    .description("Compile a plugin project (plugin.toml + assembly/index.ts) with AssemblyScript into <dir>/build/<name>.wasm")
    .action(async (dir: string | undefined) => {
      try {
        const r = await buildPluginProject(dir ?? ".");
        for (const w of r.warnings) io.err(w);
        const rel = path.relative(process.cwd(), r.path) || r.path;
        io.out(`built ${r.name} ${r.version} -> ${rel}  ${r.bytes} bytes  sha256 ${r.sha256}  (${r.ms} ms)`);
        if (r.capabilities.length > 0) {
          io.out(
            `requests: ${r.capabilities.join(", ")}  (an operator grants them in exoclaw.toml [plugins.grants.${r.name}] and runs \`exoclaw plugin approve\`)`,
          );
        }
      } catch (err) {
        if (err instanceof PluginProjectBuildError && err.diagnostics.length > 0) {
          // Compiler errors as they are: `file:line:column: error ...` lines that editors link.
          io.err(err.message);
          process.exitCode = 1;
        } else {
          fail(err);
        }
      }
    });
}
