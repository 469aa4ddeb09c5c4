/**
 * The provider SDKs a configuration calls, loaded ahead of the first model call
 * (agent/providers/warm.ts; the gateway starts it during the store's open or once listening):
 * which providers a configuration calls, and that the warm-up loads their SDKs (the same
 * packages, evaluated once: the adapter's own import() then gets the warmed module).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { providerWarmUp, providersInUse, warmProviders } from "../../host/src/agent/index.js";
import { loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-provider-warm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function load(toml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state") }, []);
}

describe("providersInUse", () => {
  it("every agent's primary and fallback models, then memory embeddings, each once, in that order", () => {
    const c = load(
      [
        '[[agents]]\nid = "main"\nmodels = ["openai/gpt-4.1-mini", "anthropic/claude-x"]',
        '[[agents]]\nid = "second"\nprovider = "anthropic"\nmodel = "claude-y"\n[agents.memory]\nembeddings = "gemini/text-embedding-004"',
        '[[agents]]\nid = "third"\nmodels = ["ollama/llama3.2:3b", "openai/gpt-4.1"]',
      ].join("\n"),
    );
    expect(providersInUse(c)).toEqual(["openai", "anthropic", "ollama", "gemini"]);
  });

  it("a zero-config agent: its one provider", () => {
    expect(providersInUse(load('[[agents]]\nid = "main"\nprovider = "anthropic"\nmodel = "claude-x"\n'))).toEqual(["anthropic"]);
  });
});

describe("warmProviders", () => {
  it("loads the SDKs, so that the adapters' import() finds them evaluated; never rejects", { timeout: 60_000 }, async () => {
    const errors: unknown[] = [];
    await warmProviders(["anthropic", "ollama"], { onError: (_provider, err) => errors.push(err) });
    expect(errors).toEqual([]);
    // Already evaluated: the import() the adapter makes resolves with the same module.
    const [a, b] = await Promise.all([import("@anthropic-ai/sdk"), import("@anthropic-ai/sdk")]);
    expect(a.default).toBe(b.default);
    expect(typeof a.APIError).toBe("function");
  });

  it("beforeStep is awaited before each step, and false ends the warm-up there", async () => {
    let asked = 0;
    const errors: unknown[] = [];
    await warmProviders(["openai", "gemini"], {
      onError: (_provider, err) => errors.push(err),
      beforeStep: async () => ++asked < 3,
    });
    // Steps: Headers, node:http2, undici, openai, @google/genai: the third ask said stop.
    expect(asked).toBe(3);
    expect(errors).toEqual([]);
  });
});

describe("providerWarmUp", () => {
  it("runs once however often it is started, after the caller's turn of the event loop", { timeout: 60_000 }, async () => {
    let asked = 0;
    const warm = providerWarmUp(
      () => {
        asked++;
        return ["anthropic"];
      },
      (_provider, err) => {
        throw err;
      },
    );
    warm.start();
    warm.start();
    // Not begun yet: the caller (a /health answer) finishes first.
    expect(asked).toBe(0);
    await new Promise((resolve) => setImmediate(resolve));
    warm.start();
    await warm.stop();
    expect(asked).toBe(1);
  });

  it("stopped before it began: never begins, and stop resolves at once", async () => {
    let asked = 0;
    const warm = providerWarmUp(
      () => {
        asked++;
        return ["openai"];
      },
      () => {},
    );
    warm.start();
    await warm.stop();
    warm.start();
    await new Promise((resolve) => setImmediate(resolve));
    expect(asked).toBe(0);
  });
});
