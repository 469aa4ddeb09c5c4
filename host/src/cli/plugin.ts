import { randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { parse as parseToml } from "smol-toml";
import { loadConfig, type Config } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import {
  ApprovalStore,
  approvalFor,
  describeRequest,
  isEmptyRequest,
  normalizeRequest,
  parseManifest,
  readManifest,
  resolveGrant,
  sha256Hex,
  validatePluginBytes,
  checkInterface,
  type PluginManifest,
} from "../plugins/index.js";
import { wasmApi } from "../plugins/wasm.js";
import { embedManifest, manifestFromToml } from "../../../scripts/lib/manifest-section.mjs";
import { registerPluginBuild } from "./plugin-build.js";
import { registerPluginNew } from "./plugin-new.js";
import { registerPluginTest } from "./plugin-test.js";

/** Where CLI subcommands write; tests substitute buffers. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** Writes `bytes` to `file` atomically (temporary file in the same directory, then rename). */
async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Reads a manifest source: `plugin.toml` (snake_case, as scripts/build-plugins.mjs reads it) or
 * a `.json` file holding the manifest itself.
 * @throws Error naming the file for unreadable files, syntax errors and invalid manifests (every field problem listed)
 */
export async function readManifestSource(file: string): Promise<PluginManifest> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new Error(`${file}: cannot read manifest (${(err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = file.endsWith(".json") ? JSON.parse(text) : manifestFromToml(parseToml(text) as Record<string, unknown>);
  } catch (err) {
    throw new Error(`${file}: ${file.endsWith(".json") ? "JSON" : "TOML"} syntax error: ${(err as Error).message}`);
  }
  return parseManifest(raw, file);
}

/**
 * `exoclaw plugin pack`: embeds (or replaces) the `exoclaw.manifest` section of `input` and
 * validates the result exactly as the gateway would at load (manifest, imports, exports).
 * @param output where to write; default: `input`, replaced atomically
 * @returns the output path, sha256 and manifest of the packed module
 * @throws Error naming the file and the problem; nothing is written then
 */
export async function packPlugin(input: string, manifestFile: string, output?: string): Promise<{ path: string; sha256: string; size: number; manifest: PluginManifest }> {
  let wasm: Uint8Array;
  try {
    wasm = new Uint8Array(await readFile(input));
  } catch (err) {
    throw new Error(`${input}: cannot read (${(err as Error).message})`);
  }
  const manifest = await readManifestSource(manifestFile);
  let packed: Uint8Array;
  try {
    packed = embedManifest(wasm, manifest);
  } catch (err) {
    throw new Error(`${input}: ${(err as Error).message}`);
  }
  const out = output ?? input;
  const v = await validatePluginBytes(packed, out);
  await writeAtomic(out, packed);
  return { path: out, sha256: v.sha256, size: packed.length, manifest: v.manifest };
}

function loadCliConfig(opts: { config?: string; pluginsDir?: string }, env: NodeJS.ProcessEnv): Config {
  return loadConfig({ config: opts.config, pluginsDir: opts.pluginsDir }, env, [BUILTIN_PLUGINS_DIR]);
}

/**
 * `exoclaw plugin approve`: records, for this exact module (sha256), the capabilities it
 * requests that the operator grants in exoclaw.toml. A running gateway picks the change up.
 * @returns what was recorded (null when the plugin requests nothing) and what could not be approved
 * @throws Error if the file is not a loadable plugin or the config is invalid
 */
export async function approvePlugin(file: string, config: Config): Promise<{ name: string; sha256: string; approved: string; notGranted: string; store: string } | { name: string; sha256: string; approved: null; notGranted: string; store: string }> {
  const v = await validatePluginFile(file);
  const store = await ApprovalStore.open(ApprovalStore.pathFor(config.stateDir));
  const name = v.manifest.name;
  if (isEmptyRequest(v.manifest.capabilities)) return { name, sha256: v.sha256, approved: null, notGranted: "-", store: store.file };
  const { record, notGranted } = approvalFor(name, v.sha256, v.manifest.capabilities, config.plugins.grants[name] ?? {});
  await store.add(record);
  return { name, sha256: v.sha256, approved: describeRequest(record.approved), notGranted: describeRequest(notGranted), store: store.file };
}

async function validatePluginFile(file: string) {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  return validatePluginBytes(bytes, path.resolve(file));
}

/** One row of `exoclaw plugin list`. */
export interface LocalPluginRow {
  name: string;
  version: string;
  kind: string;
  status: "loaded" | "pending_approval" | "error";
  sha256: string | null;
  path: string;
  requested: string;
  granted: string;
  pending: string;
  error?: string;
}

/**
 * `exoclaw plugin list`: what the gateway would load from the configured directories, with
 * each plugin's capabilities resolved against exoclaw.toml and the approvals (no gateway needed).
 * A name already taken by an earlier file is reported as an error, as the gateway would.
 */
export async function listLocalPlugins(config: Config, env: NodeJS.ProcessEnv): Promise<LocalPluginRow[]> {
  let store: ApprovalStore | null = null;
  try {
    store = await ApprovalStore.open(ApprovalStore.pathFor(config.stateDir));
  } catch {
    store = null;
  }
  const rows: LocalPluginRow[] = [];
  const names = new Map<string, string>();
  for (const dir of config.plugins.dirs) {
    let files: string[];
    try {
      files = (await readdir(dir)).filter((f) => f.endsWith(".wasm")).sort();
    } catch {
      continue;
    }
    for (const f of files) {
      const file = path.join(dir, f);
      try {
        const v = await validatePluginFile(file);
        const m = v.manifest;
        const holder = names.get(m.name);
        if (holder !== undefined) throw Object.assign(new Error(`plugin "${m.name}" is already loaded from ${holder}`), { manifest: m, sha256: v.sha256 });
        names.set(m.name, file);
        const r = resolveGrant(m.capabilities, config.plugins.grants[m.name] ?? {}, store?.exact(m.name, v.sha256), store?.previous(m.name, v.sha256), env);
        rows.push({
          name: m.name,
          version: m.version,
          kind: m.kind,
          status: isEmptyRequest(r.pending) ? "loaded" : "pending_approval",
          sha256: v.sha256,
          path: file,
          requested: describeRequest(normalizeRequest(m.capabilities)),
          granted: describeRequest(r.granted),
          pending: describeRequest(r.pending),
        });
      } catch (err) {
        const e = err as Error & { manifest?: PluginManifest; sha256?: string; reason?: string };
        let sha: string | null = e.sha256 ?? null;
        if (sha === null) {
          try {
            sha = sha256Hex(new Uint8Array(await readFile(file)));
          } catch {
            sha = null;
          }
        }
        rows.push({
          name: e.manifest?.name ?? path.basename(f, ".wasm"),
          version: e.manifest?.version ?? "",
          kind: e.manifest?.kind ?? "",
          status: "error",
          sha256: sha,
          path: file,
          requested: e.manifest ? describeRequest(e.manifest.capabilities) : "-",
          granted: "-",
          pending: "-",
          error: e.reason ?? e.message,
        });
      }
    }
  }
  return rows;
}

/** Formats rows as an aligned text table. */
export function formatTable(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  return [line(header), ...rows.map(line)];
}

/** What `exoclaw plugin inspect` reports about a file. */
export interface InspectReport {
  path: string;
  sha256: string;
  size: number;
  manifest: PluginManifest | null;
  /** Why the manifest is unusable, if it is. */
  manifestError?: string;
  imports: { module: string; name: string; kind: string }[];
  exports: { name: string; kind: string }[];
  /** Why the gateway would reject the module (null: it would load it). */
  problem: string | null;
}

/**
 * `exoclaw plugin inspect`: manifest, sha256, imports and exports of a module, and whether the
 * gateway would load it. Runs no plugin code.
 * @throws Error if the file cannot be read or is not WebAssembly at all
 */
export async function inspectPlugin(file: string): Promise<InspectReport> {
  let bytes: Uint8Array;
  try {
    bytes = new Uint8Array(await readFile(file));
  } catch (err) {
    throw new Error(`${file}: cannot read (${(err as Error).message})`);
  }
  let module;
  try {
    module = await wasmApi.compile(bytes);
  } catch (err) {
    throw new Error(`${file}: not a valid WebAssembly module: ${(err as Error).message}`);
  }
  const imports = wasmApi.Module.imports(module);
  const exports = wasmApi.Module.exports(module);
  let manifest: PluginManifest | null = null;
  let manifestError: string | undefined;
  try {
    manifest = readManifest(module, file);
  } catch (err) {
    manifestError = (err as Error).message;
  }
  const problem = manifest === null ? (manifestError ?? "no manifest") : checkInterface(manifest, imports, exports);
  return {
    path: file,
    sha256: sha256Hex(bytes),
    size: bytes.length,
    manifest,
    ...(manifestError !== undefined ? { manifestError } : {}),
    imports: imports.map((i) => ({ module: i.module, name: i.name, kind: i.kind })),
    exports: exports.map((e) => ({ name: e.name, kind: e.kind })),
    problem,
  };
}

/**
 * Adds `exoclaw plugin new|build|test|pack|approve|list|inspect` to `program`. Failures print
 * `exoclaw: <reason>` on stderr and set exit code 1.
 */
export function registerPluginCommands(program: Command, io: CliIo = processIo): void {
  const fail = (err: unknown): void => {
    io.err(`exoclaw: ${(err as Error).message}`);
    process.exitCode = 1;
  };
  const plugin = program.command("plugin").description("Write and manage plugins: new, build, test, pack, approve, list, inspect");
  registerPluginNew(plugin, io, fail);
  registerPluginBuild(plugin, io, fail);
  registerPluginTest(plugin, io, fail);

  plugin
    .command("pack <in.wasm>")
    .description("Embed (or replace) the manifest section of a module and validate it as the gateway would")
    .requiredOption("-m, --manifest <file>", "plugin.toml (or a .json manifest)")
    .option("-o, --output <out.wasm>", "where to write (default: replace <in.wasm>)")
    .action(async (input: string, opts: { manifest: string; output?: string }) => {
      try {
        const r = await packPlugin(input, opts.manifest, opts.output);
        io.out(`packed ${r.manifest.name} ${r.manifest.version} (${r.manifest.kind}) -> ${r.path}  ${r.size} bytes  sha256 ${r.sha256}`);
        const caps = describeRequest(r.manifest.capabilities);
        if (caps !== "-") io.out(`requests: ${caps}  (needs a grant in exoclaw.toml and \`exoclaw plugin approve ${r.path}\`)`);
      } catch (err) {
        fail(err);
      }
    });

  plugin
    .command("approve <file>")
    .description("Approve the capabilities a module requests that exoclaw.toml grants, bound to its sha256")
    .option("-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)")
    .action(async (file: string, opts: { config?: string }) => {
      try {
        const config = loadCliConfig(opts, io.env);
        const r = await approvePlugin(file, config);
        if (r.approved === null) {
          io.out(`${r.name} (sha256 ${r.sha256}) requests no capabilities; nothing to approve`);
          return;
        }
        io.out(`approved ${r.name} sha256 ${r.sha256}: ${r.approved}`);
        if (r.notGranted !== "-") io.out(`not granted in exoclaw.toml (add [plugins.grants.${r.name}] first): ${r.notGranted}`);
        io.out(`recorded in ${r.store}`);
      } catch (err) {
        fail(err);
      }
    });

  plugin
    .command("list")
    .description("List the plugins the gateway would load, with pending capabilities (reads the directories, not a gateway)")
    .option("-c, --config <file>", "exoclaw.toml to read")
    .option("--plugins-dir <dir>", "directory of .wasm plugins (env EXOCLAW_PLUGINS_DIR)")
    .option("--json", "print JSON instead of a table")
    .action(async (opts: { config?: string; pluginsDir?: string; json?: boolean }) => {
      try {
        const config = loadCliConfig(opts, io.env);
        const rows = await listLocalPlugins(config, io.env);
        if (opts.json) {
          io.out(JSON.stringify(rows, null, 2));
          return;
        }
        if (rows.length === 0) {
          io.out(`no plugins in ${config.plugins.dirs.join(", ")}`);
          return;
        }
        const table = formatTable(
          ["NAME", "VERSION", "KIND", "STATUS", "SHA256", "GRANTED", "PENDING", "PATH"],
          rows.map((r) => [r.name, r.version, r.kind, r.status, r.sha256?.slice(0, 12) ?? "-", r.granted, r.pending, r.path]),
        );
        for (const l of table) io.out(l);
        for (const r of rows) if (r.error !== undefined) io.out(`error: ${r.path}: ${r.error}`);
        if (rows.some((r) => r.status === "pending_approval")) io.out("approve pending capabilities with: exoclaw plugin approve <path>");
      } catch (err) {
        fail(err);
      }
    });

  plugin
    .command("inspect <file>")
    .description("Show a module's manifest, sha256, imports and exports, without running it")
    .option("--json", "print JSON")
    .action(async (file: string, opts: { json?: boolean }) => {
      try {
        const r = await inspectPlugin(file);
        if (opts.json) {
          io.out(JSON.stringify(r, null, 2));
        } else {
          io.out(`file:     ${r.path}`);
          io.out(`sha256:   ${r.sha256}`);
          io.out(`size:     ${r.size} bytes`);
          if (r.manifest !== null) {
            const m = r.manifest;
            io.out(`plugin:   ${m.name} ${m.version} (${m.kind}, abi ${m.abi})${m.description ? ` - ${m.description}` : ""}`);
            io.out(`tools:    ${m.tools.map((t) => t.name).join(", ") || "-"}`);
            io.out(`requests: ${describeRequest(m.capabilities)}`);
          } else {
            io.out(`manifest: ${r.manifestError}`);
          }
          io.out(`imports:  ${r.imports.map((i) => `${i.module}.${i.name} (${i.kind})`).join(", ") || "-"}`);
          io.out(`exports:  ${r.exports.map((e) => `${e.name} (${e.kind})`).join(", ") || "-"}`);
          io.out(`loadable: ${r.problem === null ? "yes" : `no: ${r.problem}`}`);
        }
        if (r.problem !== null) process.exitCode = 1;
      } catch (err) {
        fail(err);
      }
    });
}
