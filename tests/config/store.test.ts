/** `[store]`, `EXOCLAW_STORE` and agents' `context_window` in the configuration. */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, DEFAULT_CONTEXT_WINDOW, loadConfig } from "../../host/src/config/index.js";

const dir = mkdtempSync(join(tmpdir(), "exoclaw-store-config-"));
const state = join(dir, "state");

function load(toml: string | undefined, env: Record<string, string> = {}) {
  let file: string | undefined;
  if (toml !== undefined) {
    file = join(dir, `c${Math.random().toString(36).slice(2)}.toml`);
    writeFileSync(file, toml);
  }
  return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: state, ...env }, []);
}

describe("store configuration", () => {
  it("defaults to embedded SurrealDB under the state directory, without redaction", () => {
    const c = load(undefined);
    expect(c.store).toEqual({
      url: `rocksdb://${state}/data`,
      namespace: undefined,
      database: undefined,
      username: undefined,
      password: undefined,
      redact: false,
    });
    expect(c.agents[0]!.contextWindow).toBe(DEFAULT_CONTEXT_WINDOW);
  });

  it("keeps the engine an existing default store was written by: surrealkv files stay surrealkv, rocksdb files rocksdb", () => {
    const kvState = join(dir, "kv-state");
    mkdirSync(join(kvState, "data", "wal"), { recursive: true });
    expect(load(undefined, { EXOCLAW_STATE_DIR: kvState }).store.url).toBe(`surrealkv://${kvState}/data`);
    const rocksState = join(dir, "rocks-state");
    mkdirSync(join(rocksState, "data"), { recursive: true });
    writeFileSync(join(rocksState, "data", "CURRENT"), "MANIFEST-000005\n");
    expect(load(undefined, { EXOCLAW_STATE_DIR: rocksState }).store.url).toBe(`rocksdb://${rocksState}/data`);
    // Only exoclaw's journal (no engine files yet): a new store, the default engine.
    const journalOnly = join(dir, "journal-state");
    mkdirSync(join(journalOnly, "data", "journal"), { recursive: true });
    expect(load(undefined, { EXOCLAW_STATE_DIR: journalOnly }).store.url).toBe(`rocksdb://${journalOnly}/data`);
  });

  it("reads [store]; resolves a relative surrealkv or rocksdb directory against the config file", () => {
    expect(load('[store]\nurl = "rocksdb://sessions-rdb"\n').store.url).toBe(`rocksdb://${join(dir, "sessions-rdb")}`);
    const c = load('[store]\nurl = "surrealkv://sessions-db?sync=never"\nredact = true\n');
    expect(c.store.url).toBe(`surrealkv://${join(dir, "sessions-db")}?sync=never`);
    expect(c.store.redact).toBe(true);
    expect(load('[store]\nurl = "memory"\n').store.url).toBe("memory");
    expect(load('[store]\nurl = "mem://"\n').store.url).toBe("mem://");
  });

  it("takes a server's password from the variable password_env names, and fails clearly without it", () => {
    const toml = '[store]\nurl = "ws://db.internal:8000"\nnamespace = "prod"\ndatabase = "chat"\nusername = "exoclaw"\npassword_env = "SURREAL_PASS"\n';
    expect(load(toml, { SURREAL_PASS: "s3cret" }).store).toEqual({
      url: "ws://db.internal:8000",
      namespace: "prod",
      database: "chat",
      username: "exoclaw",
      password: "s3cret",
      redact: false,
    });
    expect(() => load(toml)).toThrow(/store\.password_env names SURREAL_PASS, which is not set/);
  });

  it("reads [store] retention (off by default: nothing is ever pruned unless asked), and refuses a bad duration naming the key", () => {
    expect(load(undefined).store.retention).toBeUndefined();
    expect(load('[store]\nretention = "30d"\n').store.retention).toEqual({ maxIdleMs: 30 * 86_400_000, intervalMs: 3_600_000 });
    expect(load('[store]\nretention = "12h"\nretention_interval = "10m"\n').store.retention).toEqual({ maxIdleMs: 12 * 3_600_000, intervalMs: 600_000 });
    expect(() => load('[store]\nretention = "30 days"\n')).toThrow(/store\.retention.*"30d", "12h"/s);
    expect(() => load("[store]\nretention = 30\n")).toThrow(/store\.retention.*duration string/s);
    expect(() => load('[store]\nretention = "0d"\n')).toThrow(/store\.retention/);
    expect(() => load('[store]\nretention = "30d"\nretention_interval = "1.5h"\n')).toThrow(/store\.retention_interval/);
    expect(() => load('[store]\nretention_interval = "1h"\n')).toThrow(/store\.retention_interval is set but store\.retention is not/);
  });

  it("EXOCLAW_STORE wins over the file; bad values are refused naming the field", () => {
    expect(load('[store]\nurl = "memory"\n', { EXOCLAW_STORE: "mem://" }).store.url).toBe("mem://");
    expect(load(undefined, { EXOCLAW_STORE: "memory" }).store.url).toBe("memory");
    expect(load(undefined, { EXOCLAW_STORE: "" }).store.url).toBe(`rocksdb://${state}/data`);
    expect(() => load(undefined, { EXOCLAW_STORE: "postgres://u:pw@h/db" })).toThrow(ConfigError);
    expect(() => load(undefined, { EXOCLAW_STORE: "postgres://u:pw@h/db" })).not.toThrow(/pw/);
    expect(() => load('[store]\nurl = "redis://x"\n')).toThrow(/store\.url/);
    expect(() => load('[store]\nnamespace = "a-b"\n')).toThrow(/store\.namespace/);
    expect(() => load("[store]\nflush = true\n")).toThrow(/flush/);
  });

  it("reads context_window per agent (at least 100 tokens)", () => {
    const c = load('[[agents]]\nid = "main"\ncontext_window = 8000\n[[agents]]\nid = "other"\n');
    expect(c.agents.map((a) => a.contextWindow)).toEqual([8000, DEFAULT_CONTEXT_WINDOW]);
    expect(() => load('[[agents]]\nid = "main"\ncontext_window = 10\n')).toThrow(/agents\.0\.context_window/);
  });
});
