// The router inside the real gateway process (bundle in dist/): bad bindings stop the gateway at
// load with the binding's position, and good ones pick the agent (checked at the provider
// emulator by model) and the session key of each chat.send.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const AGENTS = `
[[agents]]
id = "main"
provider = "anthropic"
model = "model-main"

[[agents]]
id = "helper"
provider = "anthropic"
model = "model-helper"
`;

/** Runs `exoclaw gateway` on `toml` until it exits (or 20 s); its exit code, stdout and stderr. */
function runGateway(toml: string): Promise<{ code: number | null; out: string; err: string }> {
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-router-"));
  writeFileSync(join(dir, "exoclaw.toml"), toml);
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_)/.test(k)) env[k] = v;
  const proc = spawn(process.execPath, [CLI, "gateway", "--port", "0", "--config", join(dir, "exoclaw.toml")], {
    env: { ...env, EXOCLAW_STATE_DIR: dir, ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: "http://127.0.0.1:9" },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout!.on("data", (d) => (out += d));
  proc.stderr!.on("data", (d) => (err += d));
  return new Promise((resolve) => {
    const timer = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    proc.once("exit", (code) => {
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
      resolve({ code, out, err });
    });
  });
}

describe("router in the gateway: config errors at load", () => {
  it.each([
    [
      "unknown agent",
      `[[bindings]]\nagent = "helper"\npeer = "u1"\n\n[[bindings]]\nagent = "ghost"\nchannel = "telegram"\n`,
      /bindings\[1\].*unknown agent "ghost"/,
    ],
    ["no selector", `[[bindings]]\nagent = "helper"\n`, /bindings\[0\].*(no selector|at least one of)/],
  ])("%s: exits 1 before serving, naming the binding", async (_name, bindings, message) => {
    const { code, out, err } = await runGateway(AGENTS + bindings);
    expect(code).toBe(1);
    expect(err).toMatch(message);
    expect(out).not.toContain("gateway ready");
  });
});

describe("router in the gateway: routes chat.send", () => {
  let emulator: Emulator;
  let gateway: GatewayHandle;
  let dir: string;

  beforeAll(async () => {
    emulator = await startEmulator();
    dir = mkdtempSync(join(tmpdir(), "exoclaw-router-"));
    const config = join(dir, "exoclaw.toml");
    writeFileSync(
      config,
      `${AGENTS}
[[bindings]]
agent = "main"
channel = "ws"

[[bindings]]
agent = "helper"
peer = "u:1"

[[bindings]]
agent = "helper"
guild = "g1"
`,
    );
    gateway = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STORE: "memory" }, ["--config", config]);
  });
  afterAll(async () => {
    await gateway?.stop();
    await emulator?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it.each([
    [{ peer: "u:1" }, "helper", "agent:helper:ws:default:u%3A1", "model-helper"],
    [{ peer: "u2" }, "main", "agent:main:ws:default:u2", "model-main"],
    [{ peer: "u3", guild: "g1" }, "helper", "agent:helper:ws:default:u3", "model-helper"],
    [{ peer: "u3", guild: "g1", team: "t9" }, "helper", "agent:helper:ws:default:u3", "model-helper"],
    [{ peer: "u3", guild: "g2" }, "main", "agent:main:ws:default:u3", "model-main"],
  ] as const)("%j -> %s", async (params, agentId, sessionKey, model) => {
    emulator.reset();
    const client = await RpcClient.connect(gateway.url);
    const { response } = await client.call("chat.send", { content: "hello", ...params });
    client.close();
    expect(response.msg.error).toBeUndefined();
    expect(response.msg.result).toMatchObject({ agentId, sessionKey });
    expect(emulator.requests.length).toBeGreaterThan(0);
    expect(emulator.requests.map((r) => r.body.model)).toEqual(emulator.requests.map(() => model));
  });
});
