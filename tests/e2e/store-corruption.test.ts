/**
 * A damaged write-ahead log under a real gateway process (issue 21, finding 1). The gateway
 * answers turns on the embedded store, stops; then 64 bytes a quarter into its real
 * `data/wal/*.wal` file are damaged. Before the fix it started `ready` with only the commits
 * before the damage and appended after the cut; now it refuses to start (exit 1) with a message
 * naming the file and byte offset. A torn tail (a crash while writing the last record) still
 * starts. `exoclaw store check` reports, and `--accept-loss` keeps a copy and opens the rest.
 */
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { CLI, RpcClient, startGateway } from "../support/gateway.js";

let emulator: Emulator;
const root = mkdtempSync(join(tmpdir(), "exoclaw-walgw-"));
const base = join(root, "base");
const TURNS = 40;

const env = (state: string) => ({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, EXOCLAW_STATE_DIR: state });

/** Runs the CLI to completion; the same environment cleaning as startGateway. */
function runCli(args: string[], extra: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const clean: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_)/.test(k)) clean[k] = v;
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [CLI, ...args], { env: { ...clean, ...extra }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => p.kill("SIGKILL"), 30_000);
    p.on("error", reject);
    p.on("exit", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

function walOf(state: string): string {
  const dir = join(state, "data", "wal");
  const files = readdirSync(dir).filter((n) => n.endsWith(".wal"));
  expect(files).toHaveLength(1);
  return join(dir, files[0]!);
}

function copyState(name: string): string {
  const state = join(root, name);
  cpSync(base, state, { recursive: true });
  return state;
}

beforeAll(async () => {
  emulator = await startEmulator();
  // One gateway answers TURNS turns on the embedded store and stops cleanly.
  // On surrealkv (this file damages its `wal/*.wal`; tests/store/rocksdb-wal.test.ts does RocksDB's):
  // the copies below then open as surrealkv by default, the engine their files are from.
  // In two gateway runs: the journal projects a run's turns into SurrealDB in a few large
  // transactions (one WAL record each, gathered by timing), so one run may leave a single record
  // holding every turn, and a damage inside the last record is a torn tail, not a damaged log. Two
  // clean stops give at least two, and the damage below is put in the first half of the file.
  for (let run = 0; run < 2; run++) {
    const gw = await startGateway({ ...env(base), EXOCLAW_STORE: `surrealkv://${join(base, "data")}` });
    const client = await RpcClient.connect(gw.url);
    for (let i = run * (TURNS / 2); i < (run + 1) * (TURNS / 2); i++) {
      const r = await client.call("chat.send", { content: `message ${i} for the log`, peer: `wal-${i % 4}`, idempotencyKey: `wal-${i}` });
      expect(r.response.msg.result?.text).toMatch(/^You said: message/);
    }
    client.close();
    expect(await gw.stop()).toBe(0);
  }
}, 120_000);
afterAll(async () => {
  await emulator?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("damaged write-ahead log under the gateway", () => {
  it("refuses to start, exit 1, naming the WAL file and byte offset; the file stays as it was", async () => {
    const state = copyState("damaged");
    const wal = walOf(state);
    const buf = readFileSync(wal);
    // A quarter in: inside the first run's records, with the second run's after it (see beforeAll).
    const at = Math.floor(buf.length / 4);
    for (let i = 0; i < 64; i++) buf[at + i] = buf[at + i]! ^ 0xff;
    writeFileSync(wal, buf);
    const calls = emulator.requests.length;

    const run = await runCli(["gateway", "--port", "0"], { ...env(state), EXOCLAW_LOG_LEVEL: "info" });
    expect(run.code).toBe(1);
    const lines = run.stdout
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.some((l) => l.msg === "gateway ready")).toBe(false);
    const fatal = lines.find((l) => l.msg === "gateway failed to start");
    const message = (fatal?.err as { message?: string } | undefined)?.message ?? "";
    expect(message).toMatch(new RegExp(`write-ahead log is damaged: ${wal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")} at byte \\d+`));
    expect(message).toMatch(/exoclaw store check --accept-loss/);
    // Nothing was truncated, and no turn was recovered or sent to the model again.
    expect(readFileSync(wal).equals(buf)).toBe(true);
    expect(emulator.requests.length).toBe(calls);

    // `store check` reports the same damage and changes nothing.
    const check = await runCli(["store", "check"], env(state));
    expect(check.code).toBe(1);
    expect(check.stderr).toContain(`${wal} at byte`);
    expect(readFileSync(wal).equals(buf)).toBe(true);

    // Accepting the loss: a copy of the damaged WAL is kept, and the gateway starts on the rest.
    const accept = await runCli(["store", "check", "--accept-loss"], env(state));
    expect(accept.code, accept.stderr).toBe(0);
    const copyDir = /kept a copy of the damaged write-ahead log in (\S+)/.exec(accept.stdout)?.[1];
    expect(copyDir).toBeDefined();
    expect(readFileSync(join(copyDir!, "wal", wal.split("/").pop()!)).equals(buf)).toBe(true);
    expect(statSync(wal).size).toBeLessThan(buf.length);
    const after = await runCli(["store", "check"], env(state));
    expect(after.code).toBe(0);
    expect(after.stdout).toMatch(/sound: no damaged record/);
    const gw = await startGateway(env(state));
    expect(gw.ready.msg).toBe("gateway ready");
    expect(await gw.stop()).toBe(0);
  }, 120_000);

  it("starts on a WAL whose last record is torn (crash while writing it)", async () => {
    const state = copyState("torn");
    const wal = walOf(state);
    truncateSync(wal, statSync(wal).size - 5);
    const calls = emulator.requests.length;
    const gw = await startGateway(env(state));
    try {
      expect(gw.ready.msg).toBe("gateway ready");
      const client = await RpcClient.connect(gw.url);
      const list = await client.call("sessions.list", {});
      expect(list.response.msg.result.sessions.map((s: { peer: string }) => s.peer).sort()).toEqual(["wal-0", "wal-1", "wal-2", "wal-3"]);
      client.close();
      // The lost tail was the last turn's end at most; nothing else was sent to the model again.
      expect(emulator.requests.length - calls).toBeLessThanOrEqual(1);
    } finally {
      await gw.stop();
    }
  }, 60_000);
});
