// Value-based secret scrubbing: pino's `redact` only knows paths (`token`, `headers.authorization`),
// but a secret also travels inside free text — a provider error body quoting the API key, a
// platform error quoting the bearer token a channel plugin sent. The registry knows the values
// themselves and replaces them wherever they appear.

/** What a known secret value is replaced by. */
export const SECRET_MARKER = "[REDACTED]";

/**
 * Values shorter than this are not registered: scrubbing a 3-character "secret" would mangle
 * ordinary text, and a secret that short is guessable anyway.
 */
export const MIN_SECRET_LENGTH = 8;

/**
 * The spellings of `value` that can appear in a log line or a stored text: as is, JSON-escaped
 * once (a string inside a pino line) and twice (a JSON body quoted inside a log string), and
 * URL-encoded (a key in a query string).
 */
function spellings(value: string): string[] {
  const json1 = JSON.stringify(value).slice(1, -1);
  const json2 = JSON.stringify(json1).slice(1, -1);
  return [...new Set([value, json1, json2, encodeURIComponent(value)])];
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/**
 * A set of secret values (API keys, tokens, passwords) with a scrubber that replaces each of
 * them, in every spelling {@link spellings} lists, by {@link SECRET_MARKER}. Names are kept only
 * to say which secrets are registered (never their values).
 */
export class SecretRegistry {
  private readonly values = new Map<string, string>();
  private pattern: RegExp | null = null;

  /**
   * Registers a secret value.
   * @param name what the value is, for {@link names} (e.g. `env ANTHROPIC_API_KEY`)
   * @param value the secret; undefined or empty is ignored
   * @returns false when the value is shorter than {@link MIN_SECRET_LENGTH} (then it is not
   *   scrubbed: the caller may warn, naming the secret), true otherwise
   */
  add(name: string, value: string | undefined): boolean {
    if (value === undefined || value === "") return true;
    if (value.length < MIN_SECRET_LENGTH) return false;
    if (!this.values.has(value)) {
      this.values.set(value, name);
      this.pattern = null;
    }
    return true;
  }

  /** The names of the registered secrets, for diagnostics. */
  names(): string[] {
    return [...new Set(this.values.values())];
  }

  /** How many distinct values are registered. */
  get size(): number {
    return this.values.size;
  }

  /** Forgets every value (tests). */
  clear(): void {
    this.values.clear();
    this.pattern = null;
  }

  /**
   * Replaces every registered value in `text` by {@link SECRET_MARKER} (longest spelling first,
   * so a secret that contains another is replaced whole).
   * @returns the scrubbed text and the number of replacements
   */
  scrubCount(text: string): { text: string; count: number } {
    if (this.values.size === 0 || text.length < MIN_SECRET_LENGTH) return { text, count: 0 };
    this.pattern ??= new RegExp(
      [...this.values.keys()]
        .flatMap(spellings)
        .sort((a, b) => b.length - a.length)
        .map(escapeRegExp)
        .join("|"),
      "g",
    );
    let count = 0;
    const out = text.replace(this.pattern, () => {
      count++;
      return SECRET_MARKER;
    });
    return { text: out, count };
  }

  /** {@link scrubCount} without the count. */
  scrub(text: string): string {
    return this.scrubCount(text).text;
  }
}

/**
 * The process's registry: fed at start-up from the configuration (see `configSecrets`), read by
 * the logger (every line), the provider error reporting and the channel failure notices.
 */
export const processSecrets = new SecretRegistry();

/** The secret values a configuration holds, by name (see {@link registerConfigSecrets}). */
export interface SecretSources {
  /** `[gateway] token` / `EXOCLAW_TOKEN`. */
  gatewayToken?: string;
  /** Provider API keys by provider name. */
  providerKeys?: Record<string, string | undefined>;
  /** `[plugins.grants.<plugin>].secrets`: plugin name -> secret name -> the environment variable holding it. */
  pluginSecrets?: Record<string, Record<string, { env: string }> | undefined>;
  /** `[store] password_env`'s value. */
  storePassword?: string;
  /** URLs that may carry `user:password@` (store URL, NATS servers). */
  urls?: string[];
}

/**
 * Registers every secret value the configuration holds: the gateway token, provider API keys,
 * plugin and channel secrets (read from `env`, as the plugin host does), the store password and
 * passwords inside URLs.
 * @param env where plugin secrets are read (normally `process.env`)
 * @returns the names of secrets too short to be scrubbed (for a warning; never the values)
 */
export function registerConfigSecrets(registry: SecretRegistry, sources: SecretSources, env: NodeJS.ProcessEnv): string[] {
  const short: string[] = [];
  const add = (name: string, value: string | undefined) => {
    if (!registry.add(name, value)) short.push(name);
  };
  add("gateway token", sources.gatewayToken);
  for (const [provider, key] of Object.entries(sources.providerKeys ?? {})) add(`${provider} API key`, key);
  for (const [plugin, secrets] of Object.entries(sources.pluginSecrets ?? {})) {
    for (const [name, { env: variable }] of Object.entries(secrets ?? {})) add(`plugin ${plugin} secret ${name}`, env[variable]);
  }
  add("store password", sources.storePassword);
  for (const url of sources.urls ?? []) {
    let password = "";
    try {
      password = decodeURIComponent(new URL(url).password);
    } catch {
      continue; // not a URL: nothing to take from it
    }
    add("password in a URL", password);
  }
  return short;
}
