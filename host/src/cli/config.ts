// `exoclaw config validate|show|get|set`: the configuration file the gateway would read, checked,
// shown with secrets masked, read and edited key by key (validated before anything is written).
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import type { Command } from "commander";
import { parse as parseToml, stringify as stringifyToml } from "smol-toml";
import {
  ConfigError,
  credentialSource,
  credentialsDir,
  detectProvider,
  getPath,
  loadConfig,
  parseKeyPath,
  readConfigFile,
  readCredentials,
  renderTomlValue,
  secretReferences,
  setTomlValue,
  stateDir,
  formatKeyPath,
  type FileConfig,
} from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import type { CliIo } from "./io.js";

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** What `show` and `get` print instead of a secret value. */
export const MASK = "********";

/** Keys whose values are secrets wherever they appear (`[gateway] token`, `[[gateway.clients]] token`). */
const SECRET_KEYS = new Set(["token", "password", "api_key", "secret"]);

/**
 * The config file the gateway would read: `--config`, else `EXOCLAW_CONFIG`, else
 * `<state dir>/exoclaw.toml` (which may not exist yet).
 */
export function configPath(flag: string | undefined, env: NodeJS.ProcessEnv): string {
  const explicit = flag ?? env.EXOCLAW_CONFIG;
  return explicit ? resolve(explicit) : join(stateDir(env), "exoclaw.toml");
}

/** A deep copy of parsed TOML data with every value under a {@link SECRET_KEYS} key replaced by {@link MASK}. */
export function maskSecrets(data: unknown): unknown {
  if (Array.isArray(data)) return data.map(maskSecrets);
  if (data === null || typeof data !== "object" || data instanceof Date) return data;
  return Object.fromEntries(Object.entries(data).map(([k, v]) => [k, SECRET_KEYS.has(k) && typeof v === "string" ? MASK : maskSecrets(v)]));
}

/** Parses a `config set` value as a TOML value (`7300`, `true`, `["a", "b"]`, `"text"`); anything else is a string. */
export function parseValueArg(raw: string): unknown {
  try {
    return (parseToml(`v = ${raw}`) as { v: unknown }).v;
  } catch {
    return raw;
  }
}

/**
 * Validates a whole candidate configuration text as the gateway would (schema and cross-field
 * checks), by loading it from a temporary file next to `file`.
 * @returns the temporary file, still present (the caller renames or removes it)
 * @throws ConfigError naming `file` (not the temporary name), the line and the field
 */
export function stageValidated(file: string, text: string, env: NodeJS.ProcessEnv): string {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  writeFileSync(tmp, text, { mode: 0o600, flag: "wx" });
  try {
    loadConfig({ config: tmp }, env, [BUILTIN_PLUGINS_DIR]);
  } catch (err) {
    rmSync(tmp, { force: true });
    if (err instanceof ConfigError) throw new ConfigError(err.message.split(tmp).join(file));
    throw err;
  }
  return tmp;
}

/** The credential lines of `show`/`validate`: each referenced secret, where its value comes from (never the value). */
function credentialLines(file: FileConfig, env: NodeJS.ProcessEnv): { lines: string[]; missing: string[] } {
  const files = readCredentials(stateDir(env));
  const lines: string[] = [];
  const missing: string[] = [];
  const keys = { ANTHROPIC_API_KEY: env.ANTHROPIC_API_KEY || files.ANTHROPIC_API_KEY, OPENAI_API_KEY: env.OPENAI_API_KEY || files.OPENAI_API_KEY };
  for (const ref of secretReferences(file, detectProvider({ ...env, ...keys }))) {
    const source = credentialSource(ref.name, env, files);
    if (source === "missing" && ref.name !== "EXOCLAW_TOKEN") missing.push(`${ref.name} (${ref.field})`);
    const where = source === "env" ? "environment" : source === "file" ? join(credentialsDir(stateDir(env)), ref.name) : "not set";
    lines.push(`#   ${ref.name.padEnd(24)} ${where}   <- ${ref.field}`);
  }
  return { lines, missing };
}

/** Registers `exoclaw config validate|show|get|set`. */
export function registerConfigCommands(program: Command, io: CliIo = processIo): void {
  const config = program.command("config").description("Check, show and edit exoclaw.toml (default <state dir>/exoclaw.toml)");
  const fail = (err: unknown) => {
    io.err(`exoclaw: ${(err as Error).message}`);
    process.exitCode = 1;
  };

  config
    .command("validate")
    .description("Check the config file as the gateway would (syntax, fields, credentials); exit 1 on an error")
    .option("-c, --config <file>", "config file (env EXOCLAW_CONFIG; default <state dir>/exoclaw.toml)")
    .action((opts: { config?: string }) => {
      const file = configPath(opts.config, io.env);
      try {
        if (!existsSync(file)) throw new ConfigError(`${file}: no such file (the gateway would run on defaults; \`exoclaw onboard\` writes one)`);
        loadConfig({ config: file }, io.env, [BUILTIN_PLUGINS_DIR]);
        const { missing } = credentialLines(readConfigFile(file), io.env);
        io.out(`${file}: valid`);
        for (const m of missing) io.out(`warning: secret ${m} is set neither in the environment nor in ${credentialsDir(stateDir(io.env))}`);
      } catch (err) {
        fail(err);
      }
    });

  config
    .command("show")
    .description("Print the config file with secrets masked, and where each referenced secret comes from")
    .option("-c, --config <file>", "config file (env EXOCLAW_CONFIG; default <state dir>/exoclaw.toml)")
    .action((opts: { config?: string }) => {
      const file = configPath(opts.config, io.env);
      try {
        const data: FileConfig = existsSync(file) ? readConfigFile(file) : {};
        io.out(`# ${existsSync(file) ? file : `${file} (absent: defaults)`}`);
        const text = stringifyToml(maskSecrets(data) as Record<string, unknown>).trim();
        if (text) io.out(text);
        io.out("# secrets (env > credentials file > not set):");
        for (const l of credentialLines(data, io.env).lines) io.out(l);
      } catch (err) {
        fail(err);
      }
    });

  config
    .command("get <key>")
    .description("Print one value of the config file (e.g. gateway.port, agents.0.model); exit 1 when not set")
    .option("-c, --config <file>", "config file (env EXOCLAW_CONFIG; default <state dir>/exoclaw.toml)")
    .action((key: string, opts: { config?: string }) => {
      const file = configPath(opts.config, io.env);
      try {
        const path = parseKeyPath(key);
        const data = existsSync(file) ? readConfigFile(file) : {};
        const value = getPath(maskSecrets(data), path);
        if (value === undefined) throw new ConfigError(`${file}: ${formatKeyPath(path)} is not set`);
        io.out(
          typeof value === "object" && value !== null && !Array.isArray(value)
            ? stringifyToml(value as Record<string, unknown>).trim()
            : renderTomlValue(value),
        );
      } catch (err) {
        fail(err);
      }
    });

  config
    .command("set <key> <value>")
    .description('Set one value (a TOML value: 7300, true, "text", ["a"]); the whole file is validated before it is written')
    .option("-c, --config <file>", "config file (env EXOCLAW_CONFIG; default <state dir>/exoclaw.toml)")
    .action((key: string, raw: string, opts: { config?: string }) => {
      const file = configPath(opts.config, io.env);
      try {
        const path = parseKeyPath(key);
        const leaf = path.at(-1);
        if (typeof leaf === "string" && SECRET_KEYS.has(leaf)) {
          throw new ConfigError(
            `${formatKeyPath(path)}: secrets do not go in the config file; put the value in ${credentialsDir(stateDir(io.env))}/<NAME> (mode 600) or the environment, and name it with token_env / api_key_env / secrets = { X = { env = "NAME" } }`,
          );
        }
        const before = existsSync(file) ? readFileSync(file, "utf8") : "";
        if (before) readConfigFile(file); // a broken file is reported as it is, before any edit
        const { text, keptComments } = setTomlValue(before, path, parseValueArg(raw));
        const tmp = stageValidated(file, text, io.env);
        renameSync(tmp, file);
        io.out(`${file}: ${formatKeyPath(path)} = ${renderTomlValue(parseValueArg(raw))}`);
        if (!keptComments) io.out("note: this change could not be made in place; the file was rewritten and its comments were lost");
      } catch (err) {
        fail(err);
      }
    });
}
