/** The `gemini` provider kind in the configuration: zero-config detection, keys, base URL, the zod schema. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { detectProvider, loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-gemini-config-"));

function load(toml: string | undefined, env: Record<string, string> = {}) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state"), ...env }, []);
}

describe("gemini provider configuration", () => {
  it("GEMINI_API_KEY or GOOGLE_API_KEY picks gemini with zero config, after Anthropic and OpenAI keys", () => {
    expect(detectProvider({ GEMINI_API_KEY: "g" })).toBe("gemini");
    expect(detectProvider({ GOOGLE_API_KEY: "g" })).toBe("gemini");
    expect(detectProvider({ GEMINI_API_KEY: "g", OPENAI_API_KEY: "o" })).toBe("openai");
    expect(detectProvider({ EXOCLAW_PROVIDER: "Gemini" })).toBe("gemini");
    expect(() => detectProvider({ EXOCLAW_PROVIDER: "bard" })).toThrow(/EXOCLAW_PROVIDER="bard" is not one of anthropic, openai, ollama, gemini/);
  });

  it("defaults: model gemini-2.5-flash, key from GEMINI_API_KEY, GOOGLE_API_KEY winning as in the SDK, base URL from GOOGLE_GEMINI_BASE_URL", () => {
    const c = load(undefined, { GEMINI_API_KEY: "gemini-key", GOOGLE_GEMINI_BASE_URL: "http://127.0.0.1:9/" });
    expect(c.agents[0]).toMatchObject({ provider: "gemini", model: "gemini-2.5-flash" });
    expect(c.providers.gemini).toMatchObject({ apiKey: "gemini-key", baseUrl: "http://127.0.0.1:9/", timeoutMs: 600_000, idleTimeoutMs: 60_000 });
    expect(load(undefined, { GEMINI_API_KEY: "g1", GOOGLE_API_KEY: "g2" }).providers.gemini.apiKey).toBe("g2");
  });

  it("[providers.gemini] base_url and api_key_env; an agent may name provider gemini", () => {
    const c = load(
      '[providers.gemini]\nbase_url = "http://127.0.0.1:8/"\napi_key_env = "MY_GEMINI"\n[[agents]]\nid = "main"\nprovider = "gemini"\nmodel = "gemini-2.5-pro"\n',
      {
        MY_GEMINI: "mine",
        GEMINI_API_KEY: "not-this",
      },
    );
    expect(c.providers.gemini).toMatchObject({ apiKey: "mine", baseUrl: "http://127.0.0.1:8/" });
    expect(c.agents[0]).toMatchObject({ provider: "gemini", model: "gemini-2.5-pro" });
  });

  it("a key kept as a credential file (credentials/GEMINI_API_KEY) is found by zero-config detection", () => {
    const state = mkdtempSync(join(tmpdir(), "exoclaw-gemini-cred-"));
    mkdirSync(join(state, "credentials"), { mode: 0o700 });
    writeFileSync(join(state, "credentials", "GEMINI_API_KEY"), "from-file\n", { mode: 0o600 });
    const c = loadConfig({}, { EXOCLAW_STATE_DIR: state }, []);
    expect(c.agents[0]!.provider).toBe("gemini");
    expect(c.providers.gemini.apiKey).toBe("from-file");
  });

  it("a bad [providers.gemini] entry is an error naming the key", () => {
    expect(() => load('[providers.gemini]\nbase_url = "not a url"\n')).toThrow(/providers\.gemini\.base_url/);
    expect(() => load('[providers.gemini]\nkey = "inline"\n')).toThrow(/providers\.gemini/);
  });
});
