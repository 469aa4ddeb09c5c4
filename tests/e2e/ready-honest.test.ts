// What `GET /health` 200 promises at start-up (docs/operations.md, "Start-up time and what ready
// means"), checked against the real gateway process with the durable default store and the
// first-party plugins: /health and /ready are polled from the moment the process is spawned, and
// the instant /health first answers 200 a message is sent over WebSocket without any further
// wait. It must be journaled in the store and run with every first-party plugin loaded (the
// calculator tool answers it). /ready must not answer 200 before /health does, and its answers
// before that are 503 (starting) or no listener at all. Speed is measured by the benches, not here.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient } from "../support/gateway.js";

let emulator: Emulator;
beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator?.close();
});

const FIRST_PARTY = ["calculator", "discord", "http_fetch", "json", "memory", "slack", "telegram", "time", "webhook", "whatsapp"];

/** A port free now on 127.0.0.1 (the gateway binds it: the test polls it from the spawn on). */
const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const srv = createServer().listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });

/** Status of `GET url`, or 0 when nothing listens yet. */
const status = (url: string): Promise<number> =>
  fetch(url).then(
    (r) => r.status,
    () => 0,
  );

describe("/health 200 at start-up", () => {
  it("is answered only once the store takes writes and every plugin is loaded; /ready not before it", { timeout: 120_000 }, async () => {
    const state = mkdtempSync(join(tmpdir(), "exoclaw-ready-"));
    const port = await freePort();
    const clean: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_|GEMINI_|GOOGLE_)/.test(k)) clean[k] = v;
    const proc = spawn(process.execPath, [CLI, "gateway", "--port", String(port)], {
      env: { ...clean, EXOCLAW_STATE_DIR: state, EXOCLAW_LOG_LEVEL: "warn", ANTHROPIC_API_KEY: "sk-test-ready", ANTHROPIC_BASE_URL: emulator.url },
      stdio: "ignore",
    });
    const base = `http://127.0.0.1:${port}`;
    const readyAnswers: number[] = [];
    let healthOk = false;
    let readyBeforeHealth = false;
    try {
      // /ready polled alongside, until /health answers.
      const readyPoll = (async () => {
        while (!healthOk) {
          const s = await status(`${base}/ready`);
          // The health poller may not have seen its 200 yet (the two polls race): /ready came
          // first only if /health, asked right after, still does not answer 200.
          if (s === 200 && !healthOk && (await status(`${base}/health`)) !== 200) readyBeforeHealth = true;
          readyAnswers.push(s);
          await new Promise((r) => setTimeout(r, 1));
        }
      })();
      const deadline = Date.now() + 90_000;
      while ((await status(`${base}/health`)) !== 200) {
        if (Date.now() > deadline) throw new Error("no /health 200 in 90 s");
        await new Promise((r) => setTimeout(r, 1));
      }
      healthOk = true;
      // No wait: what /health promises holds now.
      const client = await RpcClient.connect(`ws://127.0.0.1:${port}/ws`);
      const st = (await client.call("status")).response.msg.result;
      expect(st.store).toMatch(/^rocksdb:\/\//); // the default engine of a new state directory
      expect(st.pluginStats.map((p: { name: string }) => p.name).sort()).toEqual(FIRST_PARTY);
      const { response, events } = await client.call("chat.send", { content: "what is 2 ^ 3 ^ 2?" });
      expect(response.msg.result.text).toBe("The answer is 512.");
      expect(events.map((e) => e.msg.params.type)).toContain("tool_result");
      const sessions = (await client.call("sessions.list", {})).response.msg.result;
      expect(JSON.stringify(sessions)).toContain("ws");
      client.close();
      await readyPoll;
      expect(readyBeforeHealth).toBe(false);
      // Before /health: nothing listening (0) or 503 while starting, never anything else.
      expect(readyAnswers.filter((s) => s !== 0 && s !== 503 && s !== 200)).toEqual([]);
      expect(await status(`${base}/ready`)).toBe(200);
    } finally {
      proc.kill("SIGTERM");
      await new Promise((r) => proc.once("exit", r));
      rmSync(state, { recursive: true, force: true });
    }
  });
});
