// Credentials: secrets the config names by variable, read from the environment first, then from
// <state dir>/credentials/<NAME> (0600 in a 0700 directory), else nothing — the same order for
// provider keys, plugin (channel) secrets, client tokens, the store password and the gateway token.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeEach, describe, expect, it } from "vitest";
import { ConfigError, loadConfig, readCredentials, stageCredentials } from "../../host/src/config/index.js";
import { registerConfigSecrets, SecretRegistry } from "../../host/src/log/index.js";
import { channelSecrets } from "../../host/src/cli/doctor/channels.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-credentials-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let state: string;
let n = 0;

beforeEach(() => {
  state = join(root, `s${n++}`);
  mkdirSync(join(state, "credentials"), { recursive: true, mode: 0o700 });
});

function credential(name: string, value: string, mode = 0o600) {
  const file = join(state, "credentials", name);
  writeFileSync(file, `${value}\n`, { mode });
  chmodSync(file, mode);
}

function load(toml: string, env: NodeJS.ProcessEnv = {}) {
  const file = join(state, "exoclaw.toml");
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: state, ...env }, []);
}

const TOML = `
[[agents]]
id = "main"
provider = "anthropic"
[providers.anthropic]
api_key_env = "MY_ANTHROPIC_KEY"
[[gateway.clients]]
name = "phone"
token_env = "PHONE_TOKEN"
[plugins.grants.telegram]
secrets = { TELEGRAM_BOT_TOKEN = { env = "TG_BOT" } }
[store]
url = "memory"
password_env = "STORE_PW"
`;

describe("resolution order: env > credentials file > nothing", () => {
  it("every secret the config names is read from its credentials file when the variable is unset", () => {
    credential("MY_ANTHROPIC_KEY", "sk-ant-from-file-1234");
    credential("PHONE_TOKEN", "phone-token-from-file-123");
    credential("TG_BOT", "123:tg-from-file");
    credential("STORE_PW", "store-pw-from-file");
    credential("EXOCLAW_TOKEN", "gateway-token-from-file-42");
    const c = load(TOML);
    expect(c.providers.anthropic.apiKey).toBe("sk-ant-from-file-1234");
    expect(c.gateway.clients[0]!.token).toBe("phone-token-from-file-123");
    expect(c.secretEnv).toEqual({ TG_BOT: "123:tg-from-file" });
    expect(c.store.password).toBe("store-pw-from-file");
    expect(c.gateway.token).toBe("gateway-token-from-file-42");
  });

  it("a set environment variable wins over the file; an empty one does not", () => {
    credential("MY_ANTHROPIC_KEY", "sk-ant-from-file-1234");
    credential("PHONE_TOKEN", "phone-token-from-file-123");
    credential("STORE_PW", "store-pw-from-file");
    const c = load(TOML, { MY_ANTHROPIC_KEY: "sk-ant-from-env-5678", TG_BOT: "123:tg-from-env", PHONE_TOKEN: "" });
    expect(c.providers.anthropic.apiKey).toBe("sk-ant-from-env-5678");
    expect(c.secretEnv.TG_BOT).toBe("123:tg-from-env");
    expect(c.gateway.clients[0]!.token).toBe("phone-token-from-file-123");
  });

  it("set nowhere: nothing (a required one names both places)", () => {
    expect(() => load(TOML)).toThrow(/PHONE_TOKEN is not set \(nor in credentials\/PHONE_TOKEN\)/);
    credential("PHONE_TOKEN", "phone-token-from-file-123");
    credential("STORE_PW", "store-pw-from-file");
    const c = load(TOML);
    expect(c.providers.anthropic.apiKey).toBeUndefined();
    expect(c.secretEnv).toEqual({ TG_BOT: undefined });
  });

  it("zero config picks the provider whose key is a credential", () => {
    credential("OPENAI_API_KEY", "sk-openai-from-file-99");
    const c = load("");
    expect(c.agents[0]!.provider).toBe("openai");
    expect(c.providers.openai.apiKey).toBe("sk-openai-from-file-99");
  });

  it("file secrets are registered in the log scrubber like environment secrets", () => {
    credential("MY_ANTHROPIC_KEY", "sk-ant-from-file-1234");
    credential("PHONE_TOKEN", "phone-token-from-file-123");
    credential("TG_BOT", "123:tg-from-file");
    credential("STORE_PW", "store-pw-from-file");
    const c = load(TOML);
    const registry = new SecretRegistry();
    registerConfigSecrets(
      registry,
      {
        providerKeys: { anthropic: c.providers.anthropic.apiKey },
        pluginSecrets: Object.fromEntries(Object.entries(c.plugins.grants).map(([k, g]) => [k, g.secrets])),
        storePassword: c.store.password,
      },
      c.secretEnv,
    );
    expect(registry.scrub("key sk-ant-from-file-1234 bot 123:tg-from-file pw store-pw-from-file")).toBe("key [REDACTED] bot [REDACTED] pw [REDACTED]");
  });
});

describe("doctor and channels list see credentials", () => {
  it("a channel secret kept as a credential file counts as set", () => {
    credential("TG_BOT", "123:tg-from-file");
    const c = load('[channels.telegram]\nallow = ["1"]\n[plugins.grants.telegram]\nsecrets = { TELEGRAM_BOT_TOKEN = { env = "TG_BOT" } }\n');
    const s = channelSecrets(c.channels[0]!, c, { EXOCLAW_STATE_DIR: state });
    expect(s.present).toEqual(["TELEGRAM_BOT_TOKEN"]);
    expect(s.values.TELEGRAM_BOT_TOKEN).toBe("123:tg-from-file");
  });
});

describe("modes", () => {
  it("a credential file readable by others is refused, naming the file and the fix", () => {
    credential("MY_ANTHROPIC_KEY", "sk-ant-from-file-1234", 0o644);
    expect(() => readCredentials(state)).toThrow(ConfigError);
    expect(() => readCredentials(state)).toThrow(/MY_ANTHROPIC_KEY: the credential file is open to other users \(mode 644\); run: chmod 600 /);
  });

  it("a credentials directory open to others is refused", () => {
    chmodSync(join(state, "credentials"), 0o755);
    expect(() => readCredentials(state)).toThrow(/the credentials directory is open to other users \(mode 755\); run: chmod 700 /);
  });

  it("staged credentials are invisible until committed, then 0600; discard leaves nothing", () => {
    rmSync(join(state, "credentials"), { recursive: true });
    const staged = stageCredentials(state, { A_KEY: "value-a-123456" });
    expect(readCredentials(state)).toEqual({});
    staged.commit();
    expect(readCredentials(state)).toEqual({ A_KEY: "value-a-123456" });
    const other = stageCredentials(state, { B_KEY: "value-b-123456" });
    other.discard();
    expect(readCredentials(state)).toEqual({ A_KEY: "value-a-123456" });
  });
});
