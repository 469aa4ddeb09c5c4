/** `[pricing]`, `[budgets]` and `[agents.budget]` in the configuration: defaults, parsing, errors naming the key. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-budgets-config-"));

function load(toml: string | undefined) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state") }, []);
}

describe("budgets configuration", () => {
  it("defaults: no limits, UTC, warnings at 80 %, no price overrides", () => {
    const c = load(undefined);
    expect(c.budgets).toEqual({ timezone: "UTC", warnAt: 0.8 });
    expect(c.pricing).toEqual({});
    expect(c.agents[0]!.budget).toBeUndefined();
  });

  it("reads [budgets], [budgets.global], [budgets.peer], [agents.budget] and [pricing]", () => {
    const c = load(
      [
        "[[agents]]",
        'id = "main"',
        "[agents.budget]",
        "day_usd = 5",
        "month_tokens = 1000000",
        'on_exceeded = "downgrade"',
        'downgrade_model = "claude-haiku-4-5"',
        "[budgets]",
        'timezone = "Europe/Berlin"',
        "warn_at = 0.9",
        "[budgets.global]",
        "month_usd = 100",
        "[budgets.peer]",
        "session_tokens = 50000",
        '[pricing."openai/my-finetune"]',
        "input = 3",
        "output = 12",
        "cache_read = 1.5",
      ].join("\n"),
    );
    expect(c.agents[0]!.budget).toEqual({ dayUsd: 5, monthTokens: 1_000_000, onExceeded: "downgrade", downgradeModel: "claude-haiku-4-5" });
    expect(c.budgets).toEqual({ timezone: "Europe/Berlin", warnAt: 0.9, global: { monthUsd: 100 }, peer: { sessionTokens: 50_000 } });
    expect(c.pricing).toEqual({ "openai/my-finetune": { input: 3, output: 12, cacheRead: 1.5 } });
  });

  it.each([
    ['[budgets]\ntimezone = "Mars/Olympus"\n', "budgets.timezone: must be an IANA time zone name"],
    ["[budgets.global]\nday_usd = -1\n", "budgets.global.day_usd"],
    ["[budgets.peer]\nweek_usd = 1\n", "budgets.peer"],
    [
      '[[agents]]\nid = "main"\n[agents.budget]\non_exceeded = "downgrade"\n',
      'agents.0.budget.downgrade_model: on_exceeded = "downgrade" needs downgrade_model',
    ],
    ['[[agents]]\nid = "main"\n[agents.budget]\non_exceeded = "pause"\n', 'agents.0.budget.on_exceeded: must be "stop" or "downgrade"'],
    ['[pricing."gpt-4o"]\ninput = 1\noutput = 2\n', 'pricing keys are "<provider>/<model>"'],
    ['[pricing."openai/gpt-4o"]\ninput = 1\n', "pricing.openai/gpt-4o.output"],
  ])("refuses %j naming the key", (toml, message) => {
    expect(() => load(toml)).toThrow(message);
  });
});
