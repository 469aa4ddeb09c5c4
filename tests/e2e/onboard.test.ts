// `exoclaw onboard` end to end: the real CLI on a real pseudo-terminal (tests/support/pty.ts,
// util-linux `script`), the provider emulator as Anthropic (its GET /v1/models verifies the key
// and lists the models) and the fake Telegram Bot API (getMe, getUpdates). Keystrokes in; then
// the files written (config without secrets, credentials 0600 in a 0700 directory); then the real
// gateway starts from them (the key read from the credentials file only) and answers a chat turn.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway } from "../support/gateway.js";
import { startFakeTelegram, telegramUpdate, type FakeTelegram } from "../support/platforms/telegram.mjs";
import { KEYS, startPty } from "../support/pty.js";

const OPERATOR = 4242;
let emu: Emulator;
let tg: FakeTelegram;
const dirs: string[] = [];

/** The test process's environment without exoclaw's and the providers' variables. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_|TELEGRAM_)/.test(k)) env[k] = v;
  // Nothing answers on port 1: no local Ollama is detected, whatever runs on this machine.
  return { ...env, OLLAMA_HOST: "http://127.0.0.1:1", ...extra };
}

function newState(): string {
  const d = mkdtempSync(join(tmpdir(), "exoclaw-onboard-"));
  dirs.push(d);
  return join(d, "state");
}

const mode = (p: string) => statSync(p).mode & 0o777;

beforeAll(async () => {
  emu = await startEmulator();
  tg = await startFakeTelegram();
});

afterAll(async () => {
  await emu?.close();
  await tg?.close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe("exoclaw onboard on a terminal", () => {
  it("asks, verifies, writes config + credentials (0600 in 0700), and the gateway then answers a turn with them", async () => {
    const state = newState();
    const key = "sk-ant-onboard-pty-0123456789";
    const pty = startPty([process.execPath, CLI, "onboard", "--telegram-api-url", tg.url], cleanEnv({ EXOCLAW_STATE_DIR: state, ANTHROPIC_BASE_URL: emu.url }));
    await pty.expect("Model provider");
    pty.send(KEYS.enter); // Anthropic (first)
    await pty.expect("API key");
    pty.send(`${key}${KEYS.enter}`);
    await pty.expect("Verified: 2 model(s)");
    await pty.expect("emulator-large");
    pty.send(KEYS.down + KEYS.enter); // emulator-large
    await pty.expect("Connect a channel?");
    pty.send(KEYS.down + KEYS.enter); // Telegram
    await pty.expect("Telegram bot token");
    pty.send(`${tg.token}${KEYS.enter}`);
    await pty.expect("Bot @test_bot");
    await pty.expect("Detect it");
    tg.enqueue(telegramUpdate({ chatId: OPERATOR, text: "hello from the operator" }));
    pty.send(KEYS.enter);
    await pty.expect(`Your id: ${OPERATOR}`);
    await pty.expect("Who may reach the gateway?");
    pty.send(KEYS.enter); // this machine only
    await pty.expect("Write this setup?");
    pty.send(KEYS.enter);
    await pty.expect("Start the gateway");
    expect(await pty.exited).toBe(0);
    // Secrets are masked on the terminal: the typed key and token never appear.
    expect(pty.screen()).not.toContain(key);
    expect(pty.screen()).not.toContain(tg.token);

    const config = readFileSync(join(state, "exoclaw.toml"), "utf8");
    expect(config).not.toContain(key);
    expect(config).not.toContain(tg.token);
    expect(config).toContain('model = "emulator-large"');
    expect(config).toContain(`allow = [ "${OPERATOR}" ]`);
    expect(mode(state)).toBe(0o700);
    expect(mode(join(state, "exoclaw.toml"))).toBe(0o600);
    expect(mode(join(state, "credentials"))).toBe(0o700);
    expect(readdirSync(join(state, "credentials")).sort()).toEqual(["ANTHROPIC_API_KEY", "TELEGRAM_BOT_TOKEN"]);
    for (const f of readdirSync(join(state, "credentials"))) expect(mode(join(state, "credentials", f))).toBe(0o600);
    expect(readFileSync(join(state, "credentials", "ANTHROPIC_API_KEY"), "utf8").trim()).toBe(key);

    // The gateway runs from these files alone: the key from credentials/, the model chosen, and
    // the Telegram channel (approved by onboard) answers the operator's message.
    emu.reset();
    const gw = await startGateway({ EXOCLAW_STATE_DIR: state });
    try {
      const client = await RpcClient.connect(gw.url);
      const { response } = await client.call("chat.send", { content: "hello after onboard" });
      client.close();
      expect(response.msg.result.text).toContain("hello after onboard");
      const turn = emu.requests.find((r) => JSON.stringify(r.body).includes("hello after onboard"))!;
      // The SDK sends the key as x-api-key or as a bearer token, by version.
      expect(String(turn.headers["x-api-key"] ?? turn.headers.authorization)).toContain(key);
      expect(turn.body.model).toBe("emulator-large");
      const [sent] = await tg.waitForSent(1, 30_000);
      expect(sent).toMatchObject({ chat_id: OPERATOR, text: "You said: hello from the operator" });
    } finally {
      await gw.stop();
    }
  }, 120_000);

  it("finds a local Ollama, lists its models, and the gateway then runs on the one picked", async () => {
    const state = newState();
    const pty = startPty([process.execPath, CLI, "onboard"], cleanEnv({ EXOCLAW_STATE_DIR: state, OLLAMA_HOST: emu.url }));
    await pty.expect(`found at ${emu.url}: 1 model(s)`);
    pty.send(KEYS.enter); // Ollama is preselected when found and no API key is set
    await pty.expect("Ollama URL");
    pty.send(KEYS.enter);
    await pty.expect("Verified: 1 model(s)");
    await pty.expect("emulator:latest");
    pty.send(KEYS.enter);
    await pty.expect("Connect a channel?");
    pty.send(KEYS.enter); // not now
    await pty.expect("Who may reach the gateway?");
    pty.send(KEYS.enter);
    await pty.expect("Write this setup?");
    pty.send(KEYS.enter);
    expect(await pty.exited).toBe(0);
    expect(existsSync(join(state, "credentials"))).toBe(false); // Ollama needs no secret
    const gw = await startGateway({ EXOCLAW_STATE_DIR: state });
    try {
      const client = await RpcClient.connect(gw.url);
      const { response } = await client.call("chat.send", { content: "hello ollama onboard" });
      client.close();
      expect(response.msg.result.text).toContain("hello ollama onboard");
      const turn = emu.requests.find((r) => JSON.stringify(r.body).includes("hello ollama onboard"))!;
      expect(turn.provider).toBe("ollama");
      expect(turn.body.model).toBe("emulator:latest");
    } finally {
      await gw.stop();
    }
  }, 90_000);

  it("re-running shows the diff of the existing file and asks: no leaves it as it was, yes edits it (comments kept)", async () => {
    const state = newState();
    const env = cleanEnv({ EXOCLAW_STATE_DIR: state, ANTHROPIC_BASE_URL: emu.url });
    const first = startPty([process.execPath, CLI, "onboard", "--provider", "anthropic", "--model", "emulator"], {
      ...env,
      ANTHROPIC_API_KEY: "sk-ant-rerun-pty-0123456789",
    });
    expect(await first.exited).toBe(0);
    const file = join(state, "exoclaw.toml");
    writeFileSync(file, `# kept by hand\n${readFileSync(file, "utf8")}`);
    const before = readFileSync(file, "utf8");
    const rerun = async (apply: boolean) => {
      const pty = startPty([process.execPath, CLI, "onboard"], env);
      await pty.expect("Model provider");
      pty.send(KEYS.enter);
      await pty.expect("empty: keep the saved key");
      pty.send(KEYS.enter); // keep credentials/ANTHROPIC_API_KEY, verified again
      await pty.expect("Verified: 2 model(s)");
      await pty.expect("emulator-large");
      pty.send(KEYS.down + KEYS.enter);
      await pty.expect("Connect a channel?");
      pty.send(KEYS.enter);
      await pty.expect("Who may reach the gateway?");
      pty.send(KEYS.enter);
      await pty.expect("Changes to");
      await pty.expect('- model = "emulator"');
      await pty.expect('+ model = "emulator-large"');
      await pty.expect("Apply these changes?");
      pty.send(apply ? KEYS.enter : KEYS.right + KEYS.enter);
      return pty.exited;
    };
    expect(await rerun(false)).toBe(130);
    expect(readFileSync(file, "utf8")).toBe(before);
    expect(readdirSync(state).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(await rerun(true)).toBe(0);
    const after = readFileSync(file, "utf8");
    expect(after).toContain("# kept by hand");
    expect(after).toContain('model = "emulator-large"');
    expect(readFileSync(join(state, "credentials", "ANTHROPIC_API_KEY"), "utf8").trim()).toBe("sk-ant-rerun-pty-0123456789");
  }, 120_000);

  it("Ctrl-C at a prompt leaves nothing written", async () => {
    const state = newState();
    const pty = startPty([process.execPath, CLI, "onboard"], cleanEnv({ EXOCLAW_STATE_DIR: state, ANTHROPIC_BASE_URL: emu.url }));
    await pty.expect("Model provider");
    pty.send(KEYS.enter);
    await pty.expect("API key");
    pty.send(`sk-ant-half-typed${KEYS.ctrlC}`);
    expect(await pty.exited).toBe(130);
    expect(pty.screen()).toContain("nothing was written");
    expect(existsSync(state)).toBe(false);
  }, 60_000);

  it("a refused key is reported (401) and not saved; the operator may retry or give up", async () => {
    const state = newState();
    const pty = startPty([process.execPath, CLI, "onboard"], cleanEnv({ EXOCLAW_STATE_DIR: state, ANTHROPIC_BASE_URL: emu.url }));
    await pty.expect("Model provider");
    pty.send(KEYS.enter);
    await pty.expect("API key");
    pty.send(`sk-ant-invalid-key-000${KEYS.enter}`);
    await pty.expect("the key was refused (HTTP 401)");
    await pty.expect("Try again?");
    pty.send(KEYS.right + KEYS.enter); // No
    expect(await pty.exited).toBe(130);
    expect(existsSync(state)).toBe(false);
  }, 60_000);
});

describe("exoclaw onboard without a terminal", () => {
  // Asynchronous: the emulator and the fake Telegram run in this process and must keep answering.
  const run = (args: string[], env: Record<string, string>) =>
    new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
      const proc = spawn(process.execPath, [CLI, "onboard", ...args], { env: cleanEnv(env), stdio: ["ignore", "pipe", "pipe"] });
      let stdout = "";
      let stderr = "";
      proc.stdout.on("data", (d: Buffer) => (stdout += d.toString("utf8")));
      proc.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
      proc.once("close", (status) => resolve({ status, stdout, stderr }));
    });

  it("with no flags exits 2 naming the flags", async () => {
    const state = newState();
    const r = await run([], { EXOCLAW_STATE_DIR: state });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("--provider");
    expect(r.stderr).toContain("--channel");
    expect(existsSync(state)).toBe(false);
  });

  it("flags + environment: verified, written with safe modes, and the gateway answers a turn", async () => {
    const state = newState();
    const key = "sk-ant-onboard-ci-0123456789";
    const r = await run(["--provider", "anthropic", "--model", "emulator", "--channel", "webhook", "--bind", "0.0.0.0"], {
      EXOCLAW_STATE_DIR: state,
      ANTHROPIC_API_KEY: key,
      ANTHROPIC_BASE_URL: emu.url,
    });
    expect(r.stderr).toBe("");
    expect(r.status).toBe(0);
    expect(readdirSync(join(state, "credentials")).sort()).toEqual(["ANTHROPIC_API_KEY", "EXOCLAW_TOKEN", "WEBHOOK_SECRET"]);
    for (const f of readdirSync(join(state, "credentials"))) expect(mode(join(state, "credentials", f))).toBe(0o600);
    expect(mode(join(state, "credentials"))).toBe(0o700);
    const config = readFileSync(join(state, "exoclaw.toml"), "utf8");
    expect(config).toContain('bind = "0.0.0.0"');
    const token = readFileSync(join(state, "credentials", "EXOCLAW_TOKEN"), "utf8").trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(config + r.stdout).not.toContain(token);
    expect(config + r.stdout).not.toContain(key);

    // Off loopback the gateway needs the token: it comes from credentials/EXOCLAW_TOKEN.
    const gw = await startGateway({ EXOCLAW_STATE_DIR: state });
    try {
      await expect(RpcClient.connect(gw.url)).rejects.toThrow("HTTP 401");
      const client = await RpcClient.connect(gw.url, { authorization: `Bearer ${token}` });
      const { response } = await client.call("chat.send", { content: "hello ci onboard" });
      client.close();
      expect(response.msg.result.text).toContain("hello ci onboard");
    } finally {
      await gw.stop();
    }
  }, 90_000);

  it("a refused key exits 1 naming the 401 and writes nothing", async () => {
    const state = newState();
    const r = await run(["--provider", "anthropic"], { EXOCLAW_STATE_DIR: state, ANTHROPIC_API_KEY: "sk-ant-invalid-00000", ANTHROPIC_BASE_URL: emu.url });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain("the key was refused (HTTP 401)");
    expect(r.stderr).not.toContain("sk-ant-invalid-00000");
    expect(existsSync(state)).toBe(false);
  });

  it("re-running on an existing config shows the diff and changes nothing without --yes; with --yes edits it, comments kept", async () => {
    const state = newState();
    const env = { EXOCLAW_STATE_DIR: state, ANTHROPIC_API_KEY: "sk-ant-rerun-0123456789", ANTHROPIC_BASE_URL: emu.url };
    expect((await run(["--provider", "anthropic", "--model", "emulator"], env)).status).toBe(0);
    const file = join(state, "exoclaw.toml");
    writeFileSync(file, `# my own note\n${readFileSync(file, "utf8")}`);
    const before = readFileSync(file, "utf8");
    const dry = await run(["--provider", "anthropic", "--model", "emulator-large"], env);
    expect(dry.status).toBe(2);
    expect(dry.stdout).toContain('- model = "emulator"');
    expect(dry.stdout).toContain('+ model = "emulator-large"');
    expect(readFileSync(file, "utf8")).toBe(before);
    expect(readdirSync(state).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    const yes = await run(["--provider", "anthropic", "--model", "emulator-large", "--yes"], env);
    expect(yes.status).toBe(0);
    const after = readFileSync(file, "utf8");
    expect(after).toContain("# my own note");
    expect(after).toContain('model = "emulator-large"');
    expect(after).not.toContain('model = "emulator"\n');
  }, 60_000);
});
