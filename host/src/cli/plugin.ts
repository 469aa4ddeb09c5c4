import { randomBytes } from "node:crypto";
import { readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Command } from "commander";
import { parse as parseToml } from "smol-toml";
import { loadConfig, type Config } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import {
  ApprovalStore,
  approvalDiff,
  approvalFor,
  approvalRank,
  checkTrustStoreLocation,
  describeRequest,
  isEmptyRequest,
  isPendingApproval,
  normalizeRequest,
  parseManifest,
  readManifest,
  resolveGrant,
  sha256Hex,
  validatePluginBytes,
  checkInterface,
  embedManifest,
  manifestFromToml,
  type PluginManifest,
} from "../plugins/index.js";
import { wasmApi } from "../plugins/internal.js";
import type { CliIo } from "./io.js";
import { registerPluginBuild } from "./plugin-build.js";
import { registerPluginNew } from "./plugin-new.js";
import { registerPluginTest } from "./plugin-test.js";

export type { CliIo };

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
export async function packPlugin(
  input: string,
  manifestFile: string,
  output?: string,
): Promise<{ path: string; sha256: string; size: number; manifest: PluginManifest }> {
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

/** What `exoclaw plugin approve` did. Capability sets are one-line summaries (`describeRequest`; `-` = none). */
export interface ApproveResult {
  name: string;
  sha256: string;
  /** What was approved for this module (request ∩ grant). */
  approved: string;
  /** What the manifest requests that exoclaw.toml does not grant. */
  notGranted: string;
  /** The approvals file written. */
  store: string;
  /** The newest earlier approval of another module of this name (what this one replaces), or null. */
  previous: { sha256: string; at: string; path?: string } | null;
  /** This approval compared with `previous`: kept, added, removed (null without a previous approval). */
  diff: { same: string; added: string; removed: string } | null;
}

/**
 * `exoclaw plugin approve`: records, for this exact module (sha256), the capabilities it
 * requests that the operator grants in exoclaw.toml, and the path it was approved from. A module
 * that requests nothing is recorded too: the record binds the plugin name to this module, so a
 * look-alike of that name stays `pending_approval`. A running gateway picks the change up.
 * @returns what was recorded, what could not be approved, and the difference from the
 *   previously approved module of the same name
 * @throws Error if the file is not a loadable plugin or the config is invalid; TrustStoreError
 *   when the trust store sits in a plugin directory (or old approvals are found there)
 */
export async function approvePlugin(file: string, config: Config): Promise<ApproveResult> {
  await checkTrustStoreLocation(config.stateDir, config.plugins.dirs);
  const v = await validatePluginFile(file);
  const store = await ApprovalStore.open(ApprovalStore.pathFor(config.stateDir));
  const name = v.manifest.name;
  const before = store.previous(name, v.sha256);
  const { record, notGranted } = approvalFor(name, v.sha256, v.manifest.capabilities, config.plugins.grants[name] ?? {}, new Date(), path.resolve(file));
  await store.add(record);
  const d = before === undefined ? null : approvalDiff(before.approved, record.approved);
  return {
    name,
    sha256: v.sha256,
    approved: describeRequest(record.approved),
    notGranted: describeRequest(notGranted),
    store: store.file,
    previous: before === undefined ? null : { sha256: before.sha256, at: before.at, ...(before.path !== undefined ? { path: before.path } : {}) },
    diff: d === null ? null : { same: describeRequest(d.same), added: describeRequest(d.added), removed: describeRequest(d.removed) },
  };
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
  await checkTrustStoreLocation(config.stateDir, config.plugins.dirs);
  const store = await ApprovalStore.open(ApprovalStore.pathFor(config.stateDir));
  const rows: LocalPluginRow[] = [];
  /** Holder of each name: the row, and its rank (an approved module outranks the others; see approvalRank). */
  const names = new Map<string, { row: LocalPluginRow; rank: number }>();
  const refuse = (row: LocalPluginRow, reason: string): void => {
    Object.assign(row, { status: "error", granted: "-", pending: "-", error: reason });
  };
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
        const exact = store.exact(m.name, v.sha256);
        const r = resolveGrant(m.capabilities, config.plugins.grants[m.name] ?? {}, exact, store.previous(m.name, v.sha256), env);
        const row: LocalPluginRow = {
          name: m.name,
          version: m.version,
          kind: m.kind,
          status: isPendingApproval(r) ? "pending_approval" : "loaded",
          sha256: v.sha256,
          path: file,
          requested: describeRequest(normalizeRequest(m.capabilities)),
          granted: describeRequest(r.granted),
          pending: describeRequest(r.pending),
        };
        if (r.approval === "changed")
          row.error = `not approved: plugin "${m.name}" was approved for sha256 ${r.previous!.sha256}${r.previous!.path ? ` (${r.previous!.path})` : ""}; this module runs with nothing until approved`;
        rows.push(row);
        const rank = approvalRank(r, exact);
        const holder = names.get(m.name);
        if (holder === undefined) names.set(m.name, { row, rank });
        else if (rank > holder.rank) {
          refuse(holder.row, `plugin "${m.name}" is claimed by the approved module ${file}; this module is not approved`);
          names.set(m.name, { row, rank });
        } else {
          refuse(
            row,
            holder.rank > 0
              ? `plugin "${m.name}" is already loaded from ${holder.row.path} (approved); this module is not approved for that name`
              : `plugin "${m.name}" is already loaded from ${holder.row.path}`,
          );
        }
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
        io.out(`approved ${r.name} sha256 ${r.sha256}: ${r.approved === "-" ? "no capabilities (binds the name to this module)" : r.approved}`);
        if (r.notGranted !== "-") io.out(`not granted in exoclaw.toml (add [plugins.grants.${r.name}] first): ${r.notGranted}`);
        if (r.previous !== null && r.diff !== null) {
          io.out(`replaces the approval of sha256 ${r.previous.sha256}${r.previous.path !== undefined ? ` (${r.previous.path})` : ""}, ${r.previous.at}`);
          if (r.diff.added === "-" && r.diff.removed === "-") io.out(`same requests as the approved version: ${r.diff.same}`);
          else io.out(`compared with the approved version: same: ${r.diff.same}; added: ${r.diff.added}; removed: ${r.diff.removed}`);
        }
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
