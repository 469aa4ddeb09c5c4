// `exoclaw config validate|show|get|set`, run as the real CLI on private state directories.
import { spawnSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { CLI, ROOT } from "../support/gateway.js";

const root = mkdtempSync(join(tmpdir(), "exoclaw-config-cli-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A fresh state directory holding `toml` as exoclaw.toml (when given). */
function state(toml?: string): string {
  const dir = join(root, `s${n++}`);
  mkdirSync(dir, { mode: 0o700 });
  if (toml !== undefined) writeFileSync(join(dir, "exoclaw.toml"), toml, { mode: 0o600 });
  return dir;
}

function cli(dir: string, args: string[], env: Record<string, string> = {}) {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_)/.test(k)) clean[k] = v;
  return spawnSync(process.execPath, [CLI, "config", ...args], { env: { ...clean, EXOCLAW_STATE_DIR: dir, ...env }, encoding: "utf8" });
}

describe("config validate", () => {
  it("a valid file: exit 0; a referenced secret set nowhere is a warning naming the field", () => {
    const dir = state('[providers.anthropic]\napi_key_env = "MY_KEY"\n[[agents]]\nid = "a"\nprovider = "anthropic"\n');
    const r = cli(dir, ["validate"]);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("exoclaw.toml: valid");
    expect(r.stdout).toContain("warning: secret MY_KEY (providers.anthropic.api_key_env) is set neither in the environment nor in");
  });

  it("a schema error names the file, the field and the line; exit 1", () => {
    const dir = state('# comment\n\n[gateway]\nbind = "127.0.0.1"\nport = 99999\n');
    const r = cli(dir, ["validate"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(join(dir, "exoclaw.toml"));
    expect(r.stderr).toMatch(/gateway\.port: .*65535.* \(line 5\)/);
  });

  it("a syntax error names file:line:column", () => {
    const dir = state("[gateway]\nport = = 1\n");
    const r = cli(dir, ["validate"]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`${join(dir, "exoclaw.toml")}:2:`);
    expect(r.stderr).toContain("TOML syntax error");
  });
});

describe("config show / get", () => {
  const TOML = '[gateway]\ntoken = "inline-token-0123456789"\nport = 7300\n[[gateway.clients]]\nname = "phone"\ntoken = "phone-token-0123456789"\n';

  it("show masks every token and lists where each secret comes from, never the value", () => {
    const dir = state(TOML);
    mkdirSync(join(dir, "credentials"), { mode: 0o700 });
    writeFileSync(join(dir, "credentials", "ANTHROPIC_API_KEY"), "sk-ant-file-secret-1234\n", { mode: 0o600 });
    const r = cli(dir, ["show"]);
    expect(r.status).toBe(0);
    expect(r.stdout).not.toContain("inline-token-0123456789");
    expect(r.stdout).not.toContain("phone-token-0123456789");
    expect(r.stdout).not.toContain("sk-ant-file-secret-1234");
    expect(r.stdout).toContain('token = "********"');
    expect(r.stdout).toMatch(/ANTHROPIC_API_KEY\s+\S+credentials\/ANTHROPIC_API_KEY/);
  });

  it("get prints one value (masked when secret); an unset key exits 1 naming it", () => {
    const dir = state(TOML);
    expect(cli(dir, ["get", "gateway.port"]).stdout.trim()).toBe("7300");
    expect(cli(dir, ["get", "gateway.token"]).stdout.trim()).toBe('"********"');
    const missing = cli(dir, ["get", "gateway.bind"]);
    expect(missing.status).toBe(1);
    expect(missing.stderr).toContain("gateway.bind is not set");
  });
});

describe("config set", () => {
  it("edits the commented example file in place: only that line changes, comments kept", () => {
    const dir = state();
    const file = join(dir, "exoclaw.toml");
    copyFileSync(join(ROOT, "exoclaw.toml"), file);
    chmodSync(file, 0o600);
    const before = readFileSync(file, "utf8");
    const r = cli(dir, ["set", "plugins.max_instances", "8"]);
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    const after = readFileSync(file, "utf8");
    const changed = after.split("\n").filter((l) => !before.split("\n").includes(l));
    expect(changed).toEqual(["max_instances = 8"]);
    expect(after.split("\n").length).toBe(before.split("\n").length + 1);
    // An agent without an id is refused (naming the field); with one first, the model goes in.
    expect(cli(dir, ["set", "agents.0.model", '"emu-large"']).stderr).toMatch(/agents\.0\.id: .*\(line \d+\)/);
    expect(cli(dir, ["set", "agents.0.id", '"main"']).status).toBe(0);
    expect(cli(dir, ["set", "agents.0.model", '"emu-large"']).status).toBe(0);
    expect(cli(dir, ["get", "agents.0.model"]).stdout.trim()).toBe('"emu-large"');
    expect(readFileSync(file, "utf8")).toContain("# exoclaw.toml — an example.");
  });

  it("an invalid value is refused before writing, naming file, line and field; the file is unchanged", () => {
    const dir = state("[gateway]\nport = 7300\n");
    const file = join(dir, "exoclaw.toml");
    const r = cli(dir, ["set", "gateway.transport", '"carrier-pigeon"']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(file);
    expect(r.stderr).toMatch(/gateway\.transport: .* \(line 3\)/);
    expect(readFileSync(file, "utf8")).toBe("[gateway]\nport = 7300\n");
    expect(readdirSync(dir)).toEqual(["exoclaw.toml"]);
  });

  it("secrets are refused: they go in credentials/, named by *_env", () => {
    const dir = state("[gateway]\nport = 7300\n");
    const r = cli(dir, ["set", "gateway.token", '"a-token-0123456789abc"']);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("secrets do not go in the config file");
    expect(readFileSync(join(dir, "exoclaw.toml"), "utf8")).not.toContain("a-token");
  });

  it("creates the file (0600) when there is none", () => {
    const dir = state();
    expect(cli(dir, ["set", "gateway.port", "7301"]).status).toBe(0);
    expect(readFileSync(join(dir, "exoclaw.toml"), "utf8")).toBe("[gateway]\nport = 7301\n");
  });
});
