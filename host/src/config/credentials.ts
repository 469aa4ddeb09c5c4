// Credentials: secret values kept out of exoclaw.toml, one file per secret in
// `<state dir>/credentials/` (directory 0700, files 0600). The config refers to a secret by a
// variable name (`[providers.*] api_key_env`, `[plugins.grants.*] secrets = { X = { env = "NAME" } }`,
// `[[gateway.clients]] token_env`, `[store] password_env`, and `EXOCLAW_TOKEN` for the gateway
// token); the value is the environment variable of that name when it is set and not empty, else
// the file `<state dir>/credentials/<NAME>`, else nothing. Every secret lookup of the gateway and
// the CLI goes through {@link secretEnv}, so the order is the same everywhere.
import { randomBytes } from "node:crypto";
import { closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { ConfigError } from "./errors.js";
import type { FileConfig } from "./schema.js";

/** Credential names: the variable names the config refers to (`[A-Za-z_][A-Za-z0-9_]*`). */
export const CREDENTIAL_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Largest credential file read, bytes (a key or token; anything larger is a mistake). */
export const MAX_CREDENTIAL_BYTES = 64 * 1024;

/** `<stateDir>/credentials`. */
export function credentialsDir(stateDir: string): string {
  return join(stateDir, "credentials");
}

/**
 * Reads every credential file of `<stateDir>/credentials/` (absent directory = none). A file's
 * value is its content without the trailing newline; files whose names are not credential names
 * (editor backups, `.tmp` files of an interrupted write) are skipped.
 * @returns values by name
 * @throws ConfigError naming the path when the directory or a file is readable by group or
 *   others (the fix: `chmod 700` / `chmod 600`), is not a regular file, is larger than
 *   {@link MAX_CREDENTIAL_BYTES}, or cannot be read
 */
export function readCredentials(stateDir: string): Record<string, string> {
  const dir = credentialsDir(stateDir);
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ConfigError(`${dir}: cannot read the credentials directory (${(err as Error).message})`);
  }
  const dirMode = statSync(dir).mode & 0o777;
  if ((dirMode & 0o077) !== 0) {
    throw new ConfigError(`${dir}: the credentials directory is open to other users (mode ${dirMode.toString(8)}); run: chmod 700 ${dir}`);
  }
  const out: Record<string, string> = {};
  for (const name of names.sort()) {
    if (!CREDENTIAL_NAME_RE.test(name)) continue;
    const file = join(dir, name);
    const st = lstatSync(file);
    if (!st.isFile()) throw new ConfigError(`${file}: a credential must be a regular file (not a link or directory)`);
    if ((st.mode & 0o077) !== 0) {
      throw new ConfigError(`${file}: the credential file is open to other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${file}`);
    }
    if (st.size > MAX_CREDENTIAL_BYTES) throw new ConfigError(`${file}: a credential file is at most ${MAX_CREDENTIAL_BYTES} bytes (this one has ${st.size})`);
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new ConfigError(`${file}: cannot read the credential (${(err as Error).message})`);
    }
    const value = text.replace(/\r?\n$/, "");
    if (value !== "") out[name] = value;
  }
  return out;
}

/**
 * Where every secret the configuration names is read: the credential files of
 * `<stateDir>/credentials/` overlaid with the environment's non-empty variables (env wins).
 * Only secret lookups use it; everything else reads the real environment.
 * @returns a new object (neither `env` nor the files are changed)
 * @throws ConfigError as {@link readCredentials}
 */
export function secretEnv(env: NodeJS.ProcessEnv, stateDir: string): Record<string, string | undefined> {
  const merged: Record<string, string | undefined> = { ...readCredentials(stateDir) };
  for (const [k, v] of Object.entries(env)) if (v !== undefined && v !== "") merged[k] = v;
  return merged;
}

/**
 * Where a named secret's value comes from under {@link secretEnv}'s order, for diagnostics and
 * `exoclaw config show`: `env`, `file` or `missing`.
 */
export function credentialSource(name: string, env: NodeJS.ProcessEnv, files: Record<string, string>): "env" | "file" | "missing" {
  if (env[name] !== undefined && env[name] !== "") return "env";
  return name in files ? "file" : "missing";
}

/**
 * A staged credential write: each value is in a temporary file (0600) inside the credentials
 * directory (0700, created if missing); nothing is visible under its real name until
 * {@link StagedCredentials.commit}. `discard` removes the temporary files.
 */
export interface StagedCredentials {
  /** Renames every temporary file onto its name (each rename atomic). */
  commit(): void;
  /** Removes the temporary files; nothing else changes. */
  discard(): void;
}

/**
 * Stages credential values for an atomic write (see {@link StagedCredentials}).
 * @param values by credential name ({@link CREDENTIAL_NAME_RE})
 * @throws ConfigError for a bad name; the fs error when the directory cannot be created
 */
export function stageCredentials(stateDir: string, values: Record<string, string>): StagedCredentials {
  const dir = credentialsDir(stateDir);
  for (const name of Object.keys(values)) {
    if (!CREDENTIAL_NAME_RE.test(name)) throw new ConfigError(`credential name "${name}" must match ${CREDENTIAL_NAME_RE.source}`);
  }
  if (Object.keys(values).length === 0) return { commit() {}, discard() {} };
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  const staged: { tmp: string; file: string }[] = [];
  const discard = () => {
    for (const s of staged) rmSync(s.tmp, { force: true });
  };
  try {
    for (const [name, value] of Object.entries(values)) {
      const tmp = join(dir, `.${name}.${randomBytes(6).toString("hex")}.tmp`);
      staged.push({ tmp, file: join(dir, name) });
      const fd = openSync(tmp, "wx", 0o600);
      try {
        writeSync(fd, `${value}\n`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
  } catch (err) {
    discard();
    throw err;
  }
  return {
    commit() {
      for (const s of staged) renameSync(s.tmp, s.file);
    },
    discard,
  };
}

/** One secret a configuration refers to, and where (for `exoclaw config show|validate`). */
export interface SecretReference {
  /** The variable / credential file name. */
  name: string;
  /** The config field that names it, e.g. `providers.anthropic.api_key_env`. */
  field: string;
}

/**
 * The secrets a config file refers to: provider keys (`api_key_env`, default `ANTHROPIC_API_KEY`
 * / `OPENAI_API_KEY` / `GEMINI_API_KEY` for a provider an agent uses), plugin grant secrets, client `token_env`, the
 * store's `password_env` and the gateway token `EXOCLAW_TOKEN`.
 * @param defaultProvider the provider of agents that name none (zero-config detection)
 */
export function secretReferences(file: FileConfig, defaultProvider: string): SecretReference[] {
  const refs: SecretReference[] = [{ name: "EXOCLAW_TOKEN", field: "gateway token" }];
  const used = new Set(
    (file.agents?.length ? file.agents : [{}]).flatMap((a: { provider?: string; models?: string[] }) =>
      a.models ? a.models.map((m) => m.slice(0, m.indexOf("/"))) : [a.provider ?? defaultProvider],
    ),
  );
  const defaultKey = { anthropic: "ANTHROPIC_API_KEY", openai: "OPENAI_API_KEY", gemini: "GEMINI_API_KEY" } as const;
  for (const p of ["anthropic", "openai", "gemini"] as const) {
    const f = file.providers?.[p];
    const named = typeof f?.api_key_env === "string" ? [f.api_key_env] : (f?.api_key_env ?? []);
    // Several keys (rotated on 429/401): each is its own reference, numbered.
    if (named.length > 0) named.forEach((name, i) => refs.push({ name, field: `providers.${p}.api_key_env${named.length > 1 ? `.${i}` : ""}` }));
    else if (used.has(p)) refs.push({ name: defaultKey[p], field: `providers.${p} (default)` });
  }
  for (const [plugin, g] of Object.entries(file.plugins?.grants ?? {})) {
    for (const [secret, v] of Object.entries(g.secrets ?? {})) refs.push({ name: v.env, field: `plugins.grants.${plugin}.secrets.${secret}` });
  }
  for (const [i, c] of (file.gateway?.clients ?? []).entries()) if (c.token_env) refs.push({ name: c.token_env, field: `gateway.clients.${i}.token_env` });
  if (file.store?.password_env) refs.push({ name: file.store.password_env, field: "store.password_env" });
  for (const [server, t] of Object.entries(file.mcp?.servers ?? {})) {
    for (const [variable, name] of Object.entries(t.env ?? {})) refs.push({ name, field: `mcp.servers.${server}.env.${variable}` });
  }
  return refs;
}
