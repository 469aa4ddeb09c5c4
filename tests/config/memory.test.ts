/** `[agents.memory]` in the configuration: off without the table, defaults, parsing, errors naming the key. */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-memory-config-"));

function load(toml: string) {
  const file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
  writeFileSync(file, toml);
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: join(dir, "state") }, []);
}

describe("[agents.memory]", () => {
  it("is off without the table, on with defaults with it, off with enabled = false", () => {
    expect(load('[[agents]]\nid = "main"\n').agents[0]!.memory).toBeUndefined();
    expect(load('[[agents]]\nid = "main"\n[agents.memory]\n').agents[0]!.memory).toEqual({
      budgetTokens: 1024,
      notes: 20,
      recall: 5,
      share: "sender",
      sessionRecall: true,
    });
    expect(load('[[agents]]\nid = "main"\n[agents.memory]\nenabled = false\n').agents[0]!.memory).toBeUndefined();
  });

  it("reads every key", () => {
    const c = load('[[agents]]\nid = "main"\n[agents.memory]\nbudget_tokens = 300\nnotes = 5\nrecall = 2\nscope = "peer"\nsession_recall = false\n');
    expect(c.agents[0]!.memory).toEqual({ budgetTokens: 300, notes: 5, recall: 2, share: "peer", sessionRecall: false });
    const e = load('[[agents]]\nid = "main"\n[agents.memory]\nembeddings = "ollama/nomic-embed-text:v1.5"\n');
    expect(e.agents[0]!.memory!.embeddings).toEqual({ provider: "ollama", model: "nomic-embed-text:v1.5" });
  });

  it("refuses unknown keys and bad values, naming them", () => {
    expect(() => load('[[agents]]\nid = "main"\n[agents.memory]\nscope = "everyone"\n')).toThrow(/agents\.0\.memory\.scope/);
    expect(() => load('[[agents]]\nid = "main"\n[agents.memory]\nbudget = 3\n')).toThrow(/budget/);
    expect(() => load('[[agents]]\nid = "main"\n[agents.memory]\nbudget_tokens = -1\n')).toThrow(/budget_tokens/);
    expect(() => load('[[agents]]\nid = "main"\n[agents.memory]\nembeddings = "anthropic/x"\n')).toThrow(/embeddings/);
  });
});
