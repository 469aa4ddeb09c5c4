// A hostile persistent-connection channel plugin (plugins/fixtures/hostile-conn) in a real gateway:
// over its host-owned WebSocket it floods frames (answered by an echoing server, so the flood comes
// back in: the host pauses reading beyond 64 queued events), asks for 10,000 timers (16 at most), spins on self-renewing 0 ms timers, never returns from
// on_frame, and traps. Meanwhile another session runs calculator turns over the RPC WebSocket:
// their latency is printed and must stay in line with the baseline measured before the attack.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocketServer, type WebSocket } from "ws";
import { startChannelGateway, waitUntil, type ChannelGateway } from "../support/channel-gateway.js";
import { RpcClient } from "../support/gateway.js";
import { fixture } from "../plugins/sandbox/support.js";

let gw: ChannelGateway;
let wss: WebSocketServer;
let port = 0;
/** Frames the server received from the plugin. */
let received = 0;
/** The attack frames sent on each new connection (set by the test). */
let script: string[] = [];
const sockets = new Set<WebSocket>();
let baseline: number[] = [];

beforeAll(async () => {
  wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => wss.once("listening", () => r()));
  port = (wss.address() as { port: number }).port;
  wss.on("connection", (ws) => {
    sockets.add(ws);
    ws.on("close", () => sockets.delete(ws));
    for (const f of script) ws.send(f);
    ws.on("message", (data) => {
      received++;
      // Echo (bounded by what this side buffers): the plugin's flood comes back as inbound frames.
      if (ws.bufferedAmount < 1024 * 1024) ws.send(data.toString());
    });
  });
  const dir = mkdtempSync(join(tmpdir(), "exoclaw-hostile-conn-"));
  const wasm = join(dir, "hostile-conn.wasm");
  writeFileSync(wasm, await fixture("hostile-conn"));
  gw = await startChannelGateway({
    config: {
      channels: { hostile: { plugin: "hostile-conn", allow: [], connect: {} } },
      plugins: {
        grants: { "hostile-conn": { http: { hosts: ["127.0.0.1"] }, config: { url: `ws://127.0.0.1:${port}/` } } },
        limits: { "hostile-conn": { timeout_ms: 1000, memory_mb: 64 } },
      },
    } as never,
    approve: [wasm],
    args: ["--plugins-dir", dir],
  });
  await waitUntil(() => sockets.size > 0, 30_000, "the plugin's connection");
  const client = await RpcClient.connect(gw.gateway.url);
  await client.call("chat.send", { content: "what is 6 * 7?", peer: "warmup" });
  const t = performance.now();
  baseline = await bystander(client, new Promise((r) => setTimeout(r, 1500)));
  console.log(
    `baseline: ${baseline.length} bystander turns in ${(performance.now() - t).toFixed(0)} ms, p50 ${p(baseline, 0.5).toFixed(1)} ms, max ${Math.max(...baseline).toFixed(1)} ms`,
  );
  client.close();
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  for (const s of sockets) s.terminate();
  await new Promise((r) => wss?.close(() => r(undefined)));
});

const p = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(q * xs.length))]!;

/** Runs calculator turns on another session back to back until `until` settles; their latencies, ms. */
async function bystander(client: RpcClient, until: Promise<unknown>): Promise<number[]> {
  let done = false;
  void until.finally(() => (done = true));
  const latencies: number[] = [];
  while (!done) {
    const t = performance.now();
    const { response } = await client.call("chat.send", { content: "what is 6 * 7?", peer: "bystander" });
    expect(response.msg.result?.text).toBe("The answer is 42.");
    latencies.push(performance.now() - t);
  }
  return latencies;
}

describe("a hostile persistent-connection plugin cannot slow other sessions", () => {
  it.each([
    ["flood", ["flood"], /faster than allowed/],
    ["10,000 timers", ["timers10k"], null],
    ["timers", ["timers"], null],
    ["loop", ["loop"], /on_frame failed/],
    ["trap", ["trap"], /on_frame failed/],
  ] as const)(
    "%s",
    async (name, frames, logged) => {
      // A previous case's failures may have the host in its reconnect backoff.
      await waitUntil(() => sockets.size > 0, 60_000, "a connection of the plugin");
      const logsBefore = gw.gateway.logs.length;
      const receivedBefore = received;
      script = [...frames];
      // The attack starts on the current connection now and on every reconnection.
      for (const s of sockets) for (const f of frames) s.send(f);
      const other = await RpcClient.connect(gw.gateway.url);
      const t0 = performance.now();
      const latencies = await bystander(other, new Promise((r) => setTimeout(r, 4000)));
      other.close();
      script = [];
      console.log(
        `${name}: ${latencies.length} bystander turns in ${(performance.now() - t0).toFixed(0)} ms, p50 ${p(latencies, 0.5).toFixed(1)} ms, max ${Math.max(...latencies).toFixed(1)} ms (baseline p50 ${p(baseline, 0.5).toFixed(1)} ms, max ${Math.max(...baseline).toFixed(1)} ms); frames from the plugin: ${received - receivedBefore}`,
      );
      if (process.env.DEBUG_HOSTILE) console.log(gw.gateway.logs.slice(logsBefore).filter((e) => e.channel === "hostile" || e.plugin === "hostile-conn"));
      expect(latencies.length).toBeGreaterThan(3);
      // The bound is loose because CI runs other suites on the same two cores.
      expect(Math.max(...latencies)).toBeLessThan(Math.max(1_000, 4 * Math.max(...baseline)));
      if (name === "flood") expect(received - receivedBefore).toBeGreaterThan(0);
      if (logged !== null)
        await waitUntil(() => gw.gateway.logs.slice(logsBefore).find((e) => logged.test(String(e.msg))), 15_000, `a log line matching ${logged}`);
      // The gateway process is alive and still serves the connection (it reconnects after failures).
      expect(gw.gateway.proc.exitCode).toBeNull();
    },
    120_000,
  );
});
