/** `models` (per agent) and the retry, key and breaker keys of `[providers.<name>]`. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { resiliencePolicies } from "../../host/src/agent/index.js";
import { loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-resilience-config-"));

function load(toml: string, env: Record<string, string> = {}) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state"), ...env }, []);
}

describe("resilience configuration", () => {
  it("models: the chain, primary first, sets provider and model", () => {
    const c = load('[[agents]]\nid = "main"\nmodels = ["openai/gpt-4.1-mini", "anthropic/claude-x", "ollama/llama3.2:3b"]\n');
    const a = c.agents[0]!;
    expect([a.provider, a.model]).toEqual(["openai", "gpt-4.1-mini"]);
    expect(a.models).toEqual([
      { provider: "openai", model: "gpt-4.1-mini" },
      { provider: "anthropic", model: "claude-x" },
      { provider: "ollama", model: "llama3.2:3b" },
    ]);
  });

  it("rejects a malformed entry, naming the key, and models together with provider/model", () => {
    expect(() => load('[[agents]]\nid = "main"\nmodels = ["gpt-4"]\n')).toThrow(/agents\.0\.models\.0.*<provider>\/<model>/s);
    expect(() => load('[[agents]]\nid = "main"\nmodels = ["mistral/x"]\n')).toThrow(/models/);
    expect(() => load('[[agents]]\nid = "main"\nmodel = "m"\nmodels = ["openai/x"]\n')).toThrow(/either models or provider\/model/);
  });

  it("api_key_env as a list: every key set, in order; retry and breaker keys with defaults", () => {
    const c = load(
      '[providers.anthropic]\napi_key_env = ["K_A", "K_B", "K_C"]\nmax_retries = 4\nretry_base_ms = 100\nbreaker_failures = 0\n[providers.openai]\napi_key_env = "K_O"\n',
      { K_A: "sk-a", K_C: "sk-c", K_O: "sk-o" },
    );
    expect(c.providers.anthropic.apiKey).toBe("sk-a");
    expect(c.providers.anthropic.apiKeys).toEqual(["sk-a", "sk-c"]);
    expect(c.providers.openai.apiKeys).toBeUndefined();
    const p = resiliencePolicies(c.providers);
    expect(p.anthropic).toEqual({ maxRetries: 4, baseMs: 100, maxMs: 30_000, failures: 0, cooldownMs: 30_000, keyCooldownMs: 60_000, keys: 2 });
    expect(p.openai).toEqual({ maxRetries: 2, baseMs: 500, maxMs: 30_000, failures: 5, cooldownMs: 30_000, keyCooldownMs: 60_000, keys: 1 });
  });

  it("rejects out-of-range retry settings, naming the key", () => {
    expect(() => load("[providers.openai]\nmax_retries = 99\n")).toThrow(/providers\.openai\.max_retries/);
    expect(() => load("[providers.openai]\napi_key_env = []\n")).toThrow(/api_key_env/);
  });
});
