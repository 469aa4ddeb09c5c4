// `exoclaw plugin new <name>`: scaffolds a tool plugin project (default) or, with
// `--kind channel`, a channel plugin project, that builds and passes its own test as generated
// (package.json, plugin.toml, assembly/index.ts, test/cases.json for tools).
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readdir, writeFile } from "node:fs/promises";
import path from "node:path";
import type { Command } from "commander";
import { PACKAGE_ROOT } from "../paths.js";
import { VERSION } from "../version.js";
import type { CliIo } from "./io.js";
import { channelProjectFiles } from "./templates/channel.js";
import { toolProjectFiles, type TemplateDeps } from "./templates/tool.js";

/** Plugin names: lowercase, as the manifest requires (they double as file names). */
const NAME_RE = /^[a-z][a-z0-9_-]{0,63}$/;

/** Why `--kind both` is refused. */
export const BOTH_NOT_SCAFFOLDED =
  'kind "both" has no scaffold: generate a channel plugin (--kind channel), then add [[tools]] ' +
  'to its plugin.toml, a `call` export (runTool) to assembly/index.ts and set kind = "both".';

/** Options of {@link scaffoldPlugin}. */
export interface NewPluginOptions {
  /** `tool` (default) or `channel`; `both` is refused (start from a channel plugin). */
  kind?: string;
  /** Parent directory of the new project; default the current directory. */
  dir?: string;
  /**
   * Depend on registry versions even when running from a source checkout (default: a source
   * checkout links its own SDK, compiler and CLI by path, so the project works offline).
   */
  registry?: boolean;
}

/** What {@link scaffoldPlugin} created. */
export interface NewPluginResult {
  /** Absolute path of the project directory. */
  dir: string;
  /** Files written, relative to `dir`. */
  files: string[];
  deps: TemplateDeps;
}

/** Whether this exoclaw runs from a source checkout (a git work tree with plugin-sdk/ next to it). */
function sourceCheckout(): boolean {
  return existsSync(path.join(PACKAGE_ROOT, ".git")) && existsSync(path.join(PACKAGE_ROOT, "plugin-sdk", "package.json"));
}

function assemblyscriptRange(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(PACKAGE_ROOT, "package.json"), "utf8")) as { devDependencies?: Record<string, string> };
    return pkg.devDependencies?.["assemblyscript"] ?? "^0.28.20";
  } catch {
    return "^0.28.20";
  }
}

/** The dependency specs a new project gets (see {@link TemplateDeps}). */
export function templateDeps(registry = false): TemplateDeps {
  if (!registry && sourceCheckout()) {
    const asc = path.join(PACKAGE_ROOT, "node_modules", "assemblyscript");
    return {
      sdk: `file:${path.join(PACKAGE_ROOT, "plugin-sdk")}`,
      assemblyscript: existsSync(asc) ? `file:${asc}` : assemblyscriptRange(),
      // Not `file:<checkout>`: npm would run the checkout's `prepare` (a full rebuild) on install.
      exoclaw: null,
      cli: `node ${JSON.stringify(path.join(PACKAGE_ROOT, "bin", "exoclaw.js"))}`,
      linked: true,
    };
  }
  return { sdk: `^${VERSION}`, assemblyscript: assemblyscriptRange(), exoclaw: `^${VERSION}`, cli: "exoclaw", linked: false };
}

/**
 * Creates `<dir>/<name>/` with a working tool or channel plugin project.
 * @throws Error for an invalid name, a refused kind, or a target directory that exists and is not empty
 */
export async function scaffoldPlugin(name: string, options: NewPluginOptions = {}): Promise<NewPluginResult> {
  const kind = options.kind ?? "tool";
  if (kind === "both") throw new Error(BOTH_NOT_SCAFFOLDED);
  if (kind !== "tool" && kind !== "channel") throw new Error(`unknown kind "${kind}" (expected tool or channel)`);
  if (!NAME_RE.test(name)) {
    throw new Error(`invalid plugin name "${name}": use 1-64 characters, lowercase letters, digits, "_" or "-", starting with a letter`);
  }
  const dir = path.resolve(options.dir ?? ".", name);
  if (existsSync(dir) && (await readdir(dir)).length > 0) throw new Error(`${dir} already exists and is not empty`);
  const deps = templateDeps(options.registry === true);
  const files = kind === "channel" ? channelProjectFiles(name, deps) : toolProjectFiles(name, deps);
  for (const [rel, content] of Object.entries(files)) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, content);
  }
  return { dir, files: Object.keys(files), deps };
}

/** Adds `exoclaw plugin new` to the `plugin` command. */
export function registerPluginNew(plugin: Command, io: CliIo, fail: (err: unknown) => void): void {
  plugin
    .command("new <name>")
    .description(
      "Scaffold a tool or channel plugin project (plugin.toml, assembly/index.ts, package.json, test cases for tools) that builds and passes its test as is",
    )
    .option("-k, --kind <kind>", "tool or channel", "tool")
    .option("-d, --dir <parent>", "where to create the <name> directory (default: the current directory)")
    .option("--registry", "depend on registry versions of the SDK and CLI even from a source checkout")
    .action(async (name: string, opts: { kind: string; dir?: string; registry?: boolean }) => {
      try {
        const r = await scaffoldPlugin(name, opts);
        const rel = path.relative(process.cwd(), r.dir) || ".";
        io.out(`created ${r.dir}`);
        for (const f of r.files) io.out(`  ${f}`);
        io.out(
          r.deps.linked
            ? "dependencies: linked to this exoclaw checkout (works offline)"
            : "dependencies: @exoclaw/plugin-sdk, assemblyscript and exoclaw from the npm registry",
        );
        io.out("next:");
        io.out(`  cd ${rel.includes(" ") ? JSON.stringify(rel) : rel}`);
        io.out("  npm install");
        io.out(
          opts.kind === "channel"
            ? "  npm test        # builds build/" + name + ".wasm and runs the static conformance checks (manifest, ABI, imports, exports)"
            : "  npm test        # builds build/" + name + ".wasm and runs the conformance checks and test/cases.json",
        );
      } catch (err) {
        fail(err);
      }
    });
}
