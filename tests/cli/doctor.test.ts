/**
 * `exoclaw doctor` against broken setups, with real components: the provider emulator (a key it
 * refuses answers 401), a fake Telegram, a closed NATS port, a taken TCP port, a state directory
 * this user cannot open, a plugin waiting for approval. Each finding is named with its fix, and
 * the exit code is 1 exactly when an error remains.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { startFakeTelegram, type FakeTelegram } from "../support/platforms/telegram.mjs";
import { ROOT } from "../support/gateway.js";
import { runCli } from "./run-cli.js";

interface Finding {
  check: string;
  severity: "ok" | "warn" | "error";
  message: string;
  fix?: string;
  fixed?: boolean;
  latencyMs?: number;
}
interface Report {
  findings: Finding[];
  errors: number;
  warnings: number;
}

let emulator: Emulator;
let telegram: FakeTelegram;
const dirs: string[] = [];

beforeAll(async () => {
  emulator = await startEmulator();
  telegram = await startFakeTelegram();
});
afterAll(async () => {
  await emulator?.close();
  await telegram?.close();
  for (const d of dirs) {
    chmodSync(d, 0o700);
    rmSync(d, { recursive: true, force: true });
  }
});

/** A fresh private state directory, optionally with an exoclaw.toml. */
function stateDir(toml?: string): string {
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-doctor-"));
  dirs.push(dir);
  chmodSync(dir, 0o700);
  if (toml !== undefined) writeFileSync(join(dir, "exoclaw.toml"), toml, { mode: 0o600 });
  return dir;
}

/** Env of a working setup: the emulator as Anthropic, port 0 (always free). */
const goodEnv = (state: string, extra: Record<string, string> = {}) => ({
  EXOCLAW_STATE_DIR: state,
  ANTHROPIC_API_KEY: "sk-test-good-key",
  ANTHROPIC_BASE_URL: emulator.url,
  EXOCLAW_MODEL: "emulator",
  EXOCLAW_PORT: "0",
  ...extra,
});

async function doctor(env: Record<string, string>, args: string[] = [], options: { uid?: number } = {}) {
  const run = await runCli(["doctor", "--json", ...args], env, options);
  let report: Report;
  try {
    report = JSON.parse(run.stdout) as Report;
  } catch {
    throw new Error(`doctor printed no JSON (exit ${run.code}): ${run.stdout}\n${run.stderr}`);
  }
  const find = (check: string) => report.findings.filter((f) => f.check === check);
  return { ...run, report, find };
}

describe("exoclaw doctor", () => {
  it("passes a working setup: exit 0, the provider's latency measured with a real call", async () => {
    const state = stateDir();
    const r = await doctor(goodEnv(state));
    expect(r.report.findings.filter((f) => f.severity === "error")).toEqual([]);
    expect(r.code).toBe(0);
    const provider = r.find("provider:anthropic")[0]!;
    expect(provider.severity).toBe("ok");
    expect(provider.latencyMs).toBeGreaterThanOrEqual(0);
    expect(emulator.requests.length).toBe(0); // model list only: no model call, no tokens
    for (const check of ["node", "state-dir", "config", "plugins", "bus", "store", "port", "token", "disk"])
      expect(r.find(check)[0]?.severity, check).toBe("ok");
  });

  it("a key the provider refuses: error naming the 401 and the variable to fix, exit 1", async () => {
    const r = await doctor(goodEnv(stateDir(), { ANTHROPIC_API_KEY: "sk-invalid-key" }));
    expect(r.code).toBe(1);
    const f = r.find("provider:anthropic")[0]!;
    expect(f).toMatchObject({ severity: "error" });
    expect(f.message).toContain("refused the API key (HTTP 401)");
    expect(f.message).toContain(emulator.url);
    expect(f.fix).toContain("ANTHROPIC_API_KEY");
    expect(r.stdout).not.toContain("sk-invalid-key");
  });

  it("Gemini: the key accepted through GET /v1beta/models; a key it does not know (its 400 API_KEY_INVALID) is a refused key", async () => {
    const gemini = (key: string) => ({
      EXOCLAW_STATE_DIR: stateDir(),
      GEMINI_API_KEY: key,
      GOOGLE_GEMINI_BASE_URL: emulator.url,
      EXOCLAW_MODEL: "emulator",
      EXOCLAW_PORT: "0",
    });
    const good = await doctor(gemini("gemini-good-key"));
    expect(good.find("provider:gemini")[0]).toMatchObject({ severity: "ok", message: expect.stringContaining("1 model(s) listed") });
    expect(good.find("agent:main")).toEqual([]); // "emulator" is in the list (ids without "models/")
    const bad = await doctor(gemini("gemini-invalid-key"));
    expect(bad.code).toBe(1);
    const f = bad.find("provider:gemini")[0]!;
    expect(f).toMatchObject({ severity: "error", message: expect.stringContaining("refused the API key (HTTP 400)") });
    expect(f.fix).toContain("GEMINI_API_KEY");
    expect(bad.stdout).not.toContain("gemini-invalid-key");
  });

  it("no key at all: error naming the variable", async () => {
    const env = goodEnv(stateDir());
    const { ANTHROPIC_API_KEY: _k, ANTHROPIC_BASE_URL: _b, ...rest } = env;
    const r = await doctor({ ...rest, EXOCLAW_PROVIDER: "anthropic" });
    expect(r.code).toBe(1);
    expect(r.find("provider:anthropic")[0]).toMatchObject({ severity: "error", message: expect.stringContaining("ANTHROPIC_API_KEY is not set") });
  });

  it("a state directory this user cannot open: error with the chown/chmod fix, exit 1", async () => {
    const state = stateDir();
    chmodSync(state, 0o000);
    // root opens everything: run the check as an unprivileged user then.
    const uid = process.getuid?.() === 0 ? 65534 : undefined;
    const r = await doctor(goodEnv(state), [], uid !== undefined ? { uid } : {});
    expect(r.code).toBe(1);
    const f = r.find("state-dir")[0]!;
    expect(f.severity).toBe("error");
    expect(f.message).toContain(`${state} is not readable and writable by this user`);
    expect(f.fix).toBe(`chown -R $(id -un) ${state} && chmod 700 ${state}`);
  });

  it("modes group or others can read: warnings, and --fix narrows them (exit 0)", async () => {
    const state = stateDir("[gateway]\nport = 0\n");
    chmodSync(state, 0o755);
    mkdirSync(join(state, "trust"), { mode: 0o755 });
    chmodSync(join(state, "trust"), 0o755);
    writeFileSync(join(state, "trust", "approvals.json"), '{"version":1,"approvals":[]}\n', { mode: 0o644 });
    chmodSync(join(state, "trust", "approvals.json"), 0o644);
    chmodSync(join(state, "exoclaw.toml"), 0o644);
    const before = await doctor(goodEnv(state));
    const warned = before.find("state-dir");
    expect(warned.map((f) => [f.severity, f.fix])).toEqual([
      ["warn", `chmod 700 ${state}`],
      ["warn", `chmod 700 ${join(state, "trust")}`],
      ["warn", `chmod 600 ${join(state, "trust", "approvals.json")}`],
      ["warn", `chmod 600 ${join(state, "exoclaw.toml")}`],
    ]);
    expect(before.code).toBe(0); // warnings only

    const fixed = await doctor(goodEnv(state), ["--fix"]);
    expect(fixed.find("state-dir").every((f) => f.fixed === true)).toBe(true);
    expect(fixed.report.warnings).toBe(0);
    expect(statSync(state).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, "trust")).mode & 0o777).toBe(0o700);
    expect(statSync(join(state, "trust", "approvals.json")).mode & 0o777).toBe(0o600);
    expect(statSync(join(state, "exoclaw.toml")).mode & 0o777).toBe(0o600);
    const again = await doctor(goodEnv(state));
    expect(again.find("state-dir")[0]!.severity).toBe("ok");
  });

  it("--fix creates a missing state directory 0700", async () => {
    const state = join(stateDir(), "nested", "state");
    const r = await doctor(goodEnv(state), ["--fix"]);
    expect(r.find("state-dir")[0]).toMatchObject({ severity: "warn", fixed: true, fix: `mkdir -m 700 ${state}` });
    expect(statSync(state).mode & 0o777).toBe(0o700);
  });

  it("a plugin waiting for approval: a warning with the approve command; approving clears it", async () => {
    const state = stateDir('[plugins.grants.http_fetch]\nhttp = { hosts = ["example.com"] }\n');
    const r = await doctor(goodEnv(state));
    const f = r.find("plugin:http_fetch")[0]!;
    const wasm = join(ROOT, "build", "plugins", "http_fetch.wasm");
    expect(f).toMatchObject({ severity: "warn", fix: `exoclaw plugin approve ${wasm}` });
    expect(f.message).toContain("waits for approval of: http(example.com");
    const approve = await runCli(["plugin", "approve", wasm], goodEnv(state));
    expect(approve.code).toBe(0);
    const after = await doctor(goodEnv(state));
    expect(after.find("plugin:http_fetch")).toEqual([]);
  });

  it("NATS down ([bus] pointing at a closed port): error naming the URL and the fix, exit 1", async () => {
    const port = await closedPort();
    const r = await doctor(goodEnv(stateDir(`[bus]\nurl = "nats://127.0.0.1:${port}"\n`)));
    expect(r.code).toBe(1);
    const f = r.find("bus")[0]!;
    expect(f.severity).toBe("error");
    expect(f.message).toContain(`NATS at nats://127.0.0.1:${port} is not reachable`);
    expect(f.fix).toContain("nats-server -js");
  });

  it("the port taken by another process: error with the ways to pick another, exit 1", async () => {
    // Something that accepts connections and never answers (doctor's /health probe gets nothing).
    const sockets: Socket[] = [];
    const server = createServer((socket) => void sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const r = await doctor(goodEnv(stateDir(), { EXOCLAW_PORT: String(port) }));
      expect(r.code).toBe(1);
      const f = r.find("port")[0]!;
      expect(f.severity).toBe("error");
      expect(f.message).toBe(`127.0.0.1:${port} is in use by another process (not an exoclaw gateway)`);
      expect(f.fix).toContain("EXOCLAW_PORT");
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("binding off loopback without a token: error, exit 1", async () => {
    const r = await doctor(goodEnv(stateDir(), { EXOCLAW_BIND: "0.0.0.0" }));
    expect(r.code).toBe(1);
    expect(r.find("token")[0]).toMatchObject({ severity: "error", fix: expect.stringContaining("EXOCLAW_TOKEN") });
  });

  it("a config error names the file, the line and the field", async () => {
    const state = stateDir('[gateway]\nport = 0\n\n[[agents]]\nid = "main"\nmax_tokens = "lots"\n');
    const r = await doctor(goodEnv(state));
    expect(r.code).toBe(1);
    const f = r.find("config")[0]!;
    expect(f.severity).toBe("error");
    expect(f.message).toContain(`${join(state, "exoclaw.toml")}: invalid configuration`);
    expect(f.message).toContain("agents.0.max_tokens (line 6):");
    expect(f.fix).toContain(join(state, "exoclaw.toml"));
  });

  it("a channel: missing secret named with its variable; Telegram getMe refuses a wrong token; accepts the right one", async () => {
    const toml = (tokenVar: string) =>
      `[channels.telegram]\nallow = ["42"]\n\n[plugins.grants.telegram]\nhttp = { hosts = ["127.0.0.1"] }\nconfig = { base_url = "${telegram.url}" }\n` +
      `secrets = { TELEGRAM_BOT_TOKEN = { env = "${tokenVar}", allow_insecure = true }, TELEGRAM_SECRET_TOKEN = { env = "TG_SECRET" } }\n`;
    const state = stateDir(toml("TG_TOKEN"));
    const missing = await doctor(goodEnv(state));
    const m = missing.find("channel:telegram");
    expect(m.map((f) => f.severity)).toEqual(["error", "error"]);
    expect(m[0]!.message).toContain("secret TELEGRAM_BOT_TOKEN of channel telegram is not set");
    expect(m[0]!.fix).toBe(`export TG_TOKEN=... in the gateway's environment, or put the value in ${state}/credentials/TG_TOKEN (mode 600)`);

    const wrong = await doctor(goodEnv(state, { TG_TOKEN: "123:wrong-token-wrong-token", TG_SECRET: "s3cret-s3cret-s3cret" }));
    const w = wrong.find("channel:telegram")[0]!;
    expect(w.severity).toBe("error");
    expect(w.message).toContain("refused TELEGRAM_BOT_TOKEN of channel telegram (HTTP 401");
    expect(wrong.stdout).not.toContain("wrong-token-wrong-token");

    const right = await doctor(goodEnv(state, { TG_TOKEN: telegram.token, TG_SECRET: "s3cret-s3cret-s3cret" }));
    expect(right.find("channel:telegram")[0]).toMatchObject({ severity: "ok", message: expect.stringContaining("bot @test_bot") });
    expect(right.stdout).not.toContain(telegram.token);
  });

  it("prints a table with each fix when not --json", async () => {
    const run = await runCli(["doctor"], goodEnv(stateDir(), { ANTHROPIC_API_KEY: "sk-invalid-key" }));
    expect(run.code).toBe(1);
    expect(run.stdout).toMatch(/^ERROR {2}provider:anthropic {2}anthropic at .* refused the API key \(HTTP 401\)$/m);
    expect(run.stdout).toMatch(/^ +fix: set a valid key in ANTHROPIC_API_KEY/m);
    expect(run.stdout).toMatch(/1 error\(s\), 0 warning\(s\)$/m);
  });
});

/** A TCP port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const s: Server = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}
