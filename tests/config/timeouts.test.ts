/** `idle_timeout_ms` (per provider and per agent) and `turn_timeout_ms` (per agent) in the configuration. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";
import { DEFAULT_IDLE_TIMEOUT_MS, DEFAULT_TURN_TIMEOUT_MS } from "../../host/src/config/types.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-timeouts-config-"));

function load(toml: string | undefined) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state") }, []);
}

describe("timeouts configuration", () => {
  it("defaults: 60 s idle per provider, a 10 min turn deadline per agent, no agent idle override", () => {
    const c = load(undefined);
    expect(DEFAULT_IDLE_TIMEOUT_MS).toBe(60_000);
    expect(DEFAULT_TURN_TIMEOUT_MS).toBe(600_000);
    expect(Object.values(c.providers).map((p) => p.idleTimeoutMs)).toEqual([60_000, 60_000, 60_000, 60_000]);
    expect(c.agents[0]!.turnTimeoutMs).toBe(600_000);
    expect(c.agents[0]!.idleTimeoutMs).toBeUndefined();
  });

  it("reads [providers.<name>] idle_timeout_ms and the agents' idle_timeout_ms / turn_timeout_ms", () => {
    const c = load(
      '[providers.ollama]\nidle_timeout_ms = 180000\n[[agents]]\nid = "main"\nidle_timeout_ms = 5000\nturn_timeout_ms = 120000\n[[agents]]\nid = "other"\n',
    );
    expect(c.providers.ollama.idleTimeoutMs).toBe(180_000);
    expect(c.providers.anthropic.idleTimeoutMs).toBe(60_000);
    expect(c.agents.map((a) => [a.idleTimeoutMs, a.turnTimeoutMs])).toEqual([
      [5000, 120_000],
      [undefined, 600_000],
    ]);
  });

  it("refuses bad values naming the key", () => {
    expect(() => load("[providers.anthropic]\nidle_timeout_ms = 0\n")).toThrow(/providers\.anthropic\.idle_timeout_ms/);
    expect(() => load('[[agents]]\nid = "main"\nturn_timeout_ms = 1.5\n')).toThrow(/agents\.0\.turn_timeout_ms/);
    expect(() => load('[[agents]]\nid = "main"\nidle_timeout_ms = 100000000\n')).toThrow(/agents\.0\.idle_timeout_ms/);
    expect(() => load('[[agents]]\nid = "main"\nturn_timeout = 5\n')).toThrow(/turn_timeout/);
  });
});
