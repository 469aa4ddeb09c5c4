// `exoclaw onboard`: a first setup in a minute. Asks (or takes from flags) a provider, verifies its
// key with a real call, picks a model from the provider's list, optionally a channel, and writes
// exoclaw.toml plus the credentials it refers to. Nothing is written until the end, and then the
// credentials and the config are staged as temporary files and renamed together: Ctrl-C at any
// prompt leaves every file as it was. Re-running edits the existing file in place (comments kept
// where possible), after showing the diff.
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import type * as Clack from "@clack/prompts";
import type { Command } from "commander";
import { parse as parseToml } from "smol-toml";
import {
  ConfigError,
  DEFAULT_MODELS,
  credentialsDir,
  lineDiff,
  loadConfig,
  readCredentials,
  setTomlValue,
  stageCredentials,
  stateDir,
  type KeyPath,
  type ProviderName,
} from "../config/index.js";
import { processSecrets } from "../log/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { configPath, stageValidated } from "./config.js";
import { CheckError, detectOllama, listProviderModels, telegramFirstSender, telegramGetMe } from "./onboard-checks.js";
import { approvePlugin } from "./plugin.js";

/**
 * The prompt library, loaded when onboard asks (interactive mode only): it is external to the
 * bundle and imported on demand, so no other command, and not the gateway's start-up, pays for it.
 */
let p: typeof Clack;

/** Exit code when onboard cannot ask (no TTY) and was given no flags, or a required flag is missing. */
export const EXIT_USAGE = 2;
/** Exit code of a setup cancelled with Ctrl-C (nothing written). */
export const EXIT_CANCELLED = 130;

const TELEGRAM_API = "https://api.telegram.org";
const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
const KEY_NAMES: Partial<Record<ProviderName, string>> = { anthropic: "ANTHROPIC_API_KEY", openai: "OPENAI_API_KEY" };

/** The flags of the non-interactive mode (any of them selects it). */
export interface OnboardFlags {
  config?: string;
  provider?: string;
  baseUrl?: string;
  model?: string;
  channel?: string;
  telegramAllow?: string;
  telegramApiUrl?: string;
  webhookAllow?: string;
  webhookReplyUrl?: string;
  bind?: string;
  yes?: boolean;
  nonInteractive?: boolean;
}

/** The answers a setup is written from. */
interface Answers {
  provider: ProviderName;
  baseUrl?: string;
  /** Stored as the credential `keyName` (undefined: keep what is there). */
  apiKey?: string;
  keyName?: string;
  model: string;
  channel?: { kind: "telegram"; token?: string; allow: string[]; apiUrl: string } | { kind: "webhook"; secret?: string; allow: string[]; replyUrl?: string };
  bind: string;
  gatewayToken?: string;
}

/** A prompt was cancelled (Ctrl-C / Esc). */
class Cancelled extends Error {}

function answered<T>(value: T): Exclude<T, symbol> {
  if (p.isCancel(value)) throw new Cancelled();
  return value as Exclude<T, symbol>;
}

/** A new random secret: 32 bytes, base64url (43 characters). */
function newSecret(): string {
  return randomBytes(32).toString("base64url");
}

const list = (s: string | undefined) =>
  (s ?? "")
    .split(",")
    .map((x) => x.trim())
    .filter(Boolean);

/** Registers `exoclaw onboard`. */
export function registerOnboardCommand(program: Command): void {
  program
    .command("onboard")
    .description("Set up a provider, a model and optionally a channel; writes exoclaw.toml and <state dir>/credentials/")
    .option("-c, --config <file>", "config file to write (env EXOCLAW_CONFIG; default <state dir>/exoclaw.toml)")
    .option("--provider <name>", "anthropic | openai | openai-compatible | ollama (non-interactive)")
    .option("--base-url <url>", "the provider's URL (required for openai-compatible)")
    .option("--model <name>", "model (default: the provider's default when it lists it, else its first model)")
    .option("--channel <kind>", "telegram | webhook | none (default none)")
    .option("--telegram-allow <ids>", "Telegram user ids allowed to talk to the bot, comma-separated")
    .option("--telegram-api-url <url>", `Bot API server (default ${TELEGRAM_API})`)
    .option("--webhook-allow <peers>", "webhook peers allowed (default *: every signed request)")
    .option("--webhook-reply-url <url>", "where the webhook channel POSTs replies")
    .option("--bind <host>", "gateway interface (default 127.0.0.1; off loopback a token is generated)")
    .option("-y, --yes", "apply changes to an existing config without asking (non-interactive)")
    .option("--non-interactive", "never prompt; take everything from flags and the environment")
    .addHelpText(
      "after",
      `
Secrets are never taken from flags (they would show in \`ps\`): the non-interactive mode reads
ANTHROPIC_API_KEY / OPENAI_API_KEY / TELEGRAM_BOT_TOKEN from the environment and saves them to
<state dir>/credentials/ (0600). At run time each secret is read from the environment first, then
from that file. With no terminal and none of these flags, onboard exits 2.`,
    )
    .action(async (flags: OnboardFlags) => {
      const env = process.env;
      const nonInteractive =
        flags.nonInteractive === true ||
        [flags.provider, flags.model, flags.channel, flags.baseUrl, flags.telegramAllow, flags.webhookReplyUrl, flags.bind].some((v) => v !== undefined);
      const tty = process.stdin.isTTY === true && process.stdout.isTTY === true;
      if (!nonInteractive && !tty) {
        process.stderr.write(
          "exoclaw onboard: no terminal to ask on. Pass the answers as flags, e.g.\n" +
            "  ANTHROPIC_API_KEY=... exoclaw onboard --provider anthropic [--model <name>] [--channel telegram --telegram-allow <id>] [--bind <host>] [--yes]\n" +
            "flags: --provider, --base-url, --model, --channel, --telegram-allow, --telegram-api-url, --webhook-allow, --webhook-reply-url, --bind, --yes, --non-interactive\n",
        );
        process.exitCode = EXIT_USAGE;
        return;
      }
      try {
        if (nonInteractive) await runFlags(flags, env);
        else {
          p = await import("@clack/prompts");
          await runInteractive(flags, env);
        }
      } catch (err) {
        if (err instanceof Cancelled) {
          p.cancel("Cancelled: nothing was written.");
          process.exitCode = EXIT_CANCELLED;
          return;
        }
        if (err instanceof UsageError) {
          process.stderr.write(`exoclaw onboard: ${err.message}\n`);
          process.exitCode = EXIT_USAGE;
          return;
        }
        process.stderr.write(`exoclaw onboard: ${processSecrets.scrub((err as Error).message)}\n`);
        process.exitCode = 1;
      }
    });
}

/** A flag is missing or wrong in the non-interactive mode (exit 2). */
class UsageError extends Error {}

/** Picks the model: `wanted` when the provider lists it (or lists nothing), else the default or the first listed. */
function chooseModel(provider: ProviderName, models: string[], wanted: string | undefined): string {
  if (wanted !== undefined) {
    if (models.length > 0 && !models.includes(wanted))
      throw new UsageError(`--model ${wanted}: the provider does not list it; it has: ${models.slice(0, 20).join(", ")}`);
    return wanted;
  }
  if (models.includes(DEFAULT_MODELS[provider])) return DEFAULT_MODELS[provider];
  if (models[0] !== undefined) return models[0];
  throw new UsageError("the provider lists no model: pass --model <name>");
}

async function runFlags(flags: OnboardFlags, env: NodeJS.ProcessEnv): Promise<void> {
  const kind = flags.provider;
  if (kind === undefined) throw new UsageError("--provider is required (anthropic, openai, openai-compatible or ollama)");
  if (!["anthropic", "openai", "openai-compatible", "ollama"].includes(kind))
    throw new UsageError(`--provider ${kind}: expected anthropic, openai, openai-compatible or ollama`);
  if (kind === "openai-compatible" && !flags.baseUrl) throw new UsageError("--provider openai-compatible needs --base-url <url>");
  const provider: ProviderName = kind === "openai-compatible" ? "openai" : (kind as ProviderName);
  const keyName = KEY_NAMES[provider];
  const apiKey = keyName ? env[keyName] || undefined : undefined;
  const existing = keyName ? readCredentials(stateDir(env))[keyName] : undefined;
  if (keyName && !apiKey && !existing && kind !== "openai-compatible")
    throw new UsageError(`set ${keyName} in the environment (the key is never a flag); it is saved to ${credentialsDir(stateDir(env))}/${keyName}`);
  const baseUrl =
    flags.baseUrl ?? (provider === "ollama" ? env.OLLAMA_HOST : provider === "anthropic" ? env.ANTHROPIC_BASE_URL : env.OPENAI_BASE_URL) ?? undefined;
  const models = await listProviderModels({ provider, baseUrl: baseUrl || undefined, apiKey: apiKey ?? existing });
  const model = chooseModel(provider, models, flags.model);
  const answers: Answers = {
    provider,
    ...(baseUrl ? { baseUrl } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(keyName ? { keyName } : {}),
    model,
    bind: flags.bind ?? "127.0.0.1",
  };
  const channel = flags.channel ?? "none";
  if (channel === "telegram") {
    const token = env.TELEGRAM_BOT_TOKEN || readCredentials(stateDir(env)).TELEGRAM_BOT_TOKEN;
    if (!token) throw new UsageError("--channel telegram: set TELEGRAM_BOT_TOKEN in the environment");
    const allow = list(flags.telegramAllow);
    if (allow.length === 0) throw new UsageError("--channel telegram needs --telegram-allow <your Telegram user id>");
    const apiUrl = flags.telegramApiUrl ?? TELEGRAM_API;
    await telegramGetMe(apiUrl, token);
    answers.channel = { kind: "telegram", ...(env.TELEGRAM_BOT_TOKEN ? { token } : {}), allow, apiUrl };
  } else if (channel === "webhook") {
    const have = readCredentials(stateDir(env)).WEBHOOK_SECRET;
    answers.channel = {
      kind: "webhook",
      ...(have ? {} : { secret: newSecret() }),
      allow: list(flags.webhookAllow ?? "*"),
      ...(flags.webhookReplyUrl ? { replyUrl: flags.webhookReplyUrl } : {}),
    };
  } else if (channel !== "none") throw new UsageError(`--channel ${channel}: expected telegram, webhook or none`);
  if (!LOOPBACK.has(answers.bind) && !env.EXOCLAW_TOKEN && !readCredentials(stateDir(env)).EXOCLAW_TOKEN) answers.gatewayToken = newSecret();
  const plan = planWrite(flags, env, answers);
  if (plan.diff.length > 0 && plan.existed && !flags.yes) {
    process.stdout.write(`${plan.file} would change:\n${plan.diff.join("\n")}\n`);
    plan.discard();
    throw new UsageError("the config exists and would change: re-run with --yes to apply");
  }
  await commit(plan, env, (line) => process.stdout.write(`${line}\n`));
}

async function runInteractive(flags: OnboardFlags, env: NodeJS.ProcessEnv): Promise<void> {
  p.intro("exoclaw onboard");
  const state = stateDir(env);
  const creds = readCredentials(state);
  const ollamaHost = env.OLLAMA_HOST ? (/^https?:\/\//.test(env.OLLAMA_HOST) ? env.OLLAMA_HOST : `http://${env.OLLAMA_HOST}`) : "http://127.0.0.1:11434";
  const ollama = await detectOllama(ollamaHost);
  const kind = answered(
    await p.select<string>({
      message: "Model provider",
      options: [
        { value: "anthropic", label: "Anthropic", hint: "Claude; API key" },
        { value: "openai", label: "OpenAI", hint: "API key" },
        { value: "openai-compatible", label: "OpenAI-compatible server", hint: "vLLM, llama.cpp, LM Studio, ... (a URL)" },
        { value: "ollama", label: "Ollama", hint: ollama ? `found at ${ollamaHost}: ${ollama.length} model(s)` : `none found at ${ollamaHost}` },
      ],
      initialValue: ollama && ollama.length > 0 && !env.ANTHROPIC_API_KEY && !env.OPENAI_API_KEY ? "ollama" : "anthropic",
    }),
  );
  const provider: ProviderName = kind === "openai-compatible" ? "openai" : (kind as ProviderName);
  const keyName = KEY_NAMES[provider];
  let baseUrl: string | undefined = provider === "anthropic" ? env.ANTHROPIC_BASE_URL : provider === "openai" ? env.OPENAI_BASE_URL : undefined;
  if (kind === "openai-compatible" || kind === "ollama") {
    baseUrl = answered(
      await p.text({
        message: kind === "ollama" ? "Ollama URL" : "Server URL (the /v1 base)",
        initialValue: kind === "ollama" ? ollamaHost : "http://127.0.0.1:8000/v1",
        validate: (v) => (/^https?:\/\/\S+$/.test(v ?? "") ? undefined : "an http:// or https:// URL"),
      }),
    );
  }
  let apiKey: string | undefined;
  let models: string[] = [];
  for (;;) {
    if (keyName) {
      const have = env[keyName] ? `$${keyName} from the environment` : creds[keyName] ? `the saved key (credentials/${keyName})` : undefined;
      const typed = answered(
        await p.password({
          message: `${kind === "openai-compatible" ? "API key (empty if the server needs none)" : "API key"}${have ? ` (empty: keep ${have})` : ""}`,
          mask: "*",
        }),
      );
      apiKey = typed.trim() === "" ? undefined : typed.trim();
      if (apiKey) processSecrets.add(`${provider} API key`, apiKey);
    }
    const s = p.spinner();
    s.start("Checking the key with the provider's model list");
    try {
      models = await listProviderModels({ provider, baseUrl, apiKey: apiKey ?? (keyName ? env[keyName] || creds[keyName] : undefined) });
      s.stop(`Verified: ${models.length} model(s) available`);
      break;
    } catch (err) {
      s.error(`Not verified: ${processSecrets.scrub((err as Error).message)}`);
      const again = answered(await p.confirm({ message: "Try again?", initialValue: true }));
      if (!again) throw new Cancelled();
    }
  }
  let model: string;
  if (models.length > 0) {
    model = answered(
      await p.select<string>({
        message: "Model",
        options: models.map((m) => ({ value: m, label: m })),
        initialValue: models.includes(DEFAULT_MODELS[provider]) ? DEFAULT_MODELS[provider] : models[0],
        maxItems: 12,
      }),
    );
  } else {
    model = answered(await p.text({ message: "Model name (the provider lists none)", validate: (v) => (v ? undefined : "a model name") }));
  }
  const answers: Answers = {
    provider,
    ...(baseUrl ? { baseUrl } : {}),
    ...(apiKey ? { apiKey } : {}),
    ...(keyName ? { keyName } : {}),
    model,
    bind: "127.0.0.1",
  };

  const channel = answered(
    await p.select<string>({
      message: "Connect a channel?",
      options: [
        { value: "none", label: "Not now", hint: "WebSocket clients only" },
        { value: "telegram", label: "Telegram bot", hint: "polls getUpdates; no public URL needed" },
        { value: "webhook", label: "Generic webhook", hint: "HMAC-signed JSON; a secret is generated" },
      ],
    }),
  );
  if (channel === "telegram") answers.channel = await askTelegram(flags, env, creds);
  if (channel === "webhook") {
    const replyUrl = answered(await p.text({ message: "Where replies are POSTed (empty: none)", placeholder: "https://example.com/exoclaw-replies" }));
    answers.channel = { kind: "webhook", ...(creds.WEBHOOK_SECRET ? {} : { secret: newSecret() }), allow: ["*"], ...(replyUrl ? { replyUrl } : {}) };
  }
  const bind = answered(
    await p.select<string>({
      message: "Who may reach the gateway?",
      options: [
        { value: "127.0.0.1", label: "This machine only", hint: "127.0.0.1, no token needed" },
        { value: "0.0.0.0", label: "The network", hint: "0.0.0.0; a gateway token is generated" },
      ],
    }),
  );
  answers.bind = bind;
  if (!LOOPBACK.has(bind) && !env.EXOCLAW_TOKEN && !creds.EXOCLAW_TOKEN) answers.gatewayToken = newSecret();

  const plan = planWrite(flags, env, answers);
  if (plan.existed && plan.diff.length > 0) {
    p.note(plan.diff.join("\n"), `Changes to ${plan.file}`);
    if (plan.lostComments) p.log.warn("This edit cannot keep the file's comments: it is rewritten from its values.");
  } else if (!plan.existed) p.note(plan.text, `New ${plan.file}`);
  if (plan.credentials.length > 0) p.log.info(`Credentials to save in ${credentialsDir(state)}: ${plan.credentials.join(", ")}`);
  const ok = answered(await p.confirm({ message: plan.existed ? "Apply these changes?" : "Write this setup?", initialValue: true }));
  if (!ok) {
    plan.discard();
    throw new Cancelled();
  }
  await commit(plan, env, (line) => p.log.success(line));
  p.outro("Start the gateway: node bin/exoclaw.js gateway   (or `exoclaw gateway` when installed globally)");
}

async function askTelegram(flags: OnboardFlags, env: NodeJS.ProcessEnv, creds: Record<string, string>): Promise<NonNullable<Answers["channel"]>> {
  const apiUrl = flags.telegramApiUrl ?? TELEGRAM_API;
  for (;;) {
    const have = env.TELEGRAM_BOT_TOKEN || creds.TELEGRAM_BOT_TOKEN;
    const typed = answered(
      await p.password({ message: `Telegram bot token (from @BotFather)${have ? " (empty: keep the saved one)" : ""}`, mask: "*" }),
    ).trim();
    const token = typed || have;
    if (!token) continue;
    processSecrets.add("telegram bot token", token);
    const s = p.spinner();
    s.start("Checking the token (getMe)");
    try {
      const me = await telegramGetMe(apiUrl, token);
      s.stop(`Bot @${me.username} (id ${me.id})`);
      const how = answered(
        await p.select<string>({
          message: "Your own Telegram user id (only allowed users reach the agent)",
          options: [
            { value: "detect", label: `Detect it: I will send @${me.username} a message now` },
            { value: "type", label: "Type it" },
          ],
        }),
      );
      let id: string | null = null;
      if (how === "detect") {
        const w = p.spinner();
        w.start(`Waiting up to 2 minutes for your message to @${me.username}`);
        id = await telegramFirstSender(apiUrl, token, 120_000);
        if (id) w.stop(`Your id: ${id}`);
        else w.error("No message arrived");
      }
      if (id === null)
        id = answered(await p.text({ message: "Your Telegram user id (digits)", validate: (v) => (/^\d+$/.test(v ?? "") ? undefined : "digits only") }));
      return { kind: "telegram", ...(typed ? { token } : {}), allow: [id], apiUrl };
    } catch (err) {
      s.error(`Not verified: ${processSecrets.scrub((err as Error).message)}`);
      if (!(err instanceof CheckError)) throw err;
    }
  }
}

/** A write prepared but not done: the staged config (validated) and credentials, and the diff. */
interface Plan {
  file: string;
  /** The validated new config, next to `file`, renamed onto it by `commit`. */
  tmp: string;
  existed: boolean;
  text: string;
  diff: string[];
  lostComments: boolean;
  /** Credential names that will be written. */
  credentials: string[];
  values: Record<string, string>;
  discard(): void;
}

const HEADER = `# exoclaw.toml, written by \`exoclaw onboard\` (run it again to change these answers: it shows
# the changes first). Secrets are not in this file: each *_env name below, and EXOCLAW_TOKEN, is
# read from the environment, else from <state dir>/credentials/<NAME> (mode 600).
# Every option, commented: exoclaw.toml in the exoclaw package.
`;

/** The config edits for a set of answers, as key paths and values, in write order. */
function edits(answers: Answers, current: Record<string, unknown>): [KeyPath, unknown][] {
  const out: [KeyPath, unknown][] = [];
  const agents = current.agents as { id?: string }[] | undefined;
  if (!agents?.length) out.push([["agents", 0, "id"], "main"]);
  out.push([["agents", 0, "provider"], answers.provider], [["agents", 0, "model"], answers.model]);
  if (answers.baseUrl) out.push([["providers", answers.provider, "base_url"], answers.baseUrl]);
  if (answers.keyName) out.push([["providers", answers.provider, "api_key_env"], answers.keyName]);
  if (!LOOPBACK.has(answers.bind) || (current.gateway as { bind?: string } | undefined)?.bind !== undefined) out.push([["gateway", "bind"], answers.bind]);
  const c = answers.channel;
  if (c?.kind === "telegram") {
    out.push([["channels", "telegram", "allow"], c.allow], [["channels", "telegram", "poll", "interval_ms"], 1000]);
    out.push(
      [["plugins", "grants", "telegram", "http", "hosts"], [new URL(c.apiUrl).hostname]],
      [["plugins", "grants", "telegram", "http", "methods"], ["POST"]],
    );
    if (c.apiUrl !== TELEGRAM_API) out.push([["plugins", "grants", "telegram", "config", "base_url"], c.apiUrl]);
    out.push([["plugins", "grants", "telegram", "secrets", "TELEGRAM_BOT_TOKEN", "env"], "TELEGRAM_BOT_TOKEN"]);
  } else if (c?.kind === "webhook") {
    out.push([["channels", "webhook", "allow"], c.allow], [["plugins", "grants", "webhook", "secrets", "WEBHOOK_SECRET", "env"], "WEBHOOK_SECRET"]);
    if (c.replyUrl) {
      out.push([["plugins", "grants", "webhook", "config", "base_url"], c.replyUrl]);
      out.push(
        [["plugins", "grants", "webhook", "http", "hosts"], [new URL(c.replyUrl).hostname]],
        [["plugins", "grants", "webhook", "http", "methods"], ["POST"]],
      );
    }
  }
  return out;
}

/**
 * Computes the new config text from the answers (editing the existing file line by line when
 * there is one), validates it as the gateway would from a temporary file next to it, and lists
 * the credentials to write. Nothing visible changes.
 * @throws ConfigError when the existing file is not TOML or the result does not validate
 */
function planWrite(flags: OnboardFlags, env: NodeJS.ProcessEnv, answers: Answers): Plan {
  const file = configPath(flags.config, env);
  const existed = existsSync(file);
  const before = existed ? readFileSync(file, "utf8") : HEADER;
  let current: Record<string, unknown>;
  try {
    current = parseToml(before) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`${file}: TOML syntax error, fix it or move it away first: ${(err as Error).message}`);
  }
  let text = before;
  let lostComments = false;
  for (const [path, value] of edits(answers, current)) {
    const r = setTomlValue(text, path, value);
    text = r.text;
    lostComments ||= !r.keptComments;
  }
  const values: Record<string, string> = {};
  if (answers.apiKey && answers.keyName) values[answers.keyName] = answers.apiKey;
  if (answers.channel?.kind === "telegram" && answers.channel.token) values.TELEGRAM_BOT_TOKEN = answers.channel.token;
  if (answers.channel?.kind === "webhook" && answers.channel.secret) values.WEBHOOK_SECRET = answers.channel.secret;
  if (answers.gatewayToken) values.EXOCLAW_TOKEN = answers.gatewayToken;
  // Validated with the new secrets visible, as the gateway will see them.
  const tmp = stageValidated(file, text, { ...env, ...values });
  return {
    file,
    tmp,
    existed,
    text,
    diff: existed ? lineDiff(before, text) : [],
    lostComments,
    credentials: Object.keys(values),
    values,
    discard: () => rmSync(tmp, { force: true }),
  };
}

/**
 * Writes the plan: credentials staged as temporary files, then every credential and the config
 * renamed into place (each rename atomic), then the channel plugin approved for the granted
 * capabilities. A failure before the renames removes the temporary files.
 */
async function commit(plan: Plan, env: NodeJS.ProcessEnv, say: (line: string) => void): Promise<void> {
  const tmp = plan.tmp;
  let staged;
  try {
    staged = stageCredentials(stateDir(env), plan.values);
  } catch (err) {
    plan.discard();
    throw err;
  }
  staged.commit();
  renameSync(tmp, plan.file);
  say(`Wrote ${plan.file}`);
  for (const name of plan.credentials) say(`Saved ${join(credentialsDir(stateDir(env)), name)} (mode 600)`);
  const config = loadConfig({ config: plan.file }, env, [BUILTIN_PLUGINS_DIR]);
  for (const channel of config.channels) {
    if (!(channel.plugin in config.plugins.grants)) continue;
    const wasm = join(BUILTIN_PLUGINS_DIR, `${channel.plugin}.wasm`);
    if (!existsSync(wasm)) continue;
    const r = await approvePlugin(wasm, config);
    say(`Approved plugin ${r.name} for: ${r.approved}`);
  }
}
