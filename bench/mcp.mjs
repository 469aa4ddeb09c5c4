// bench:mcp — one MCP tool call (stdio, @modelcontextprotocol/server-everything's `echo`, through
// the host's MCP client: approval check, in-flight slot, JSON-RPC over the child's stdin/stdout,
// result mapping) against one WASM tool call of the same payload (the `echo` fixture plugin
// through the plugin registry: sandbox worker, MessagePack envelope), p50/p99 in one run.
// Needs build/fixtures/echo.wasm (`npm run bench:mcp` builds it first).
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { importSource, stats } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const WARMUP = 100;
const mcp = await importSource("host/src/mcp/index.ts", "mcp");
const plugins = await importSource("host/src/plugins/index.ts", "mcp-plugins");
const { default: pino } = await import("pino");
const logger = pino({ level: "silent" });

const state = mkdtempSync(join(tmpdir(), "exoclaw-bench-mcp-"));
const dir = mkdtempSync(join(tmpdir(), "exoclaw-bench-mcp-plugins-"));
copyFileSync(join(ROOT, "build/fixtures/echo.wasm"), join(dir, "echo.wasm"));
const server = {
  name: "everything",
  start: "startup",
  limits: { timeoutMs: 60_000, maxOutputBytes: 1024 * 1024, maxInFlight: 4 },
  transport: "stdio",
  command: process.execPath,
  args: [join(ROOT, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "stdio"],
  env: {},
};
await mcp.approveMcpServer("everything", { mcp: { servers: [server] }, stateDir: state, secretEnv: {}, source: "bench" });
const clients = await mcp.startMcpClients({ servers: [server], stateDir: state, secrets: {}, logger, watchApprovals: false });
const host = await plugins.loadPlugins({ dirs: [dir], logger, stateDir: state });
const signal = new AbortController().signal;

async function time(n, fn) {
  const samples = [];
  for (let i = 0; i < n; i++) {
    const t = performance.now();
    await fn();
    samples.push(performance.now() - t);
  }
  return samples;
}

const f = (x) => x.toFixed(3);
console.log(`bench:mcp — ${CALLS} sequential calls each, after ${WARMUP} warm-up calls; ms`);
for (const size of [64, 16 * 1024]) {
  const text = "x".repeat(size);
  const viaMcp = async () => {
    const r = await clients.callMcpTool("everything__echo", { message: text }, signal);
    if (r.isError || r.content !== `Echo: ${text}`) throw new Error(`mcp echo: ${r.content.slice(0, 200)}`);
  };
  const viaWasm = async () => {
    const r = await host.callTool("echo", { text }, signal);
    if (r.isError || !r.content.includes(text)) throw new Error(`wasm echo: ${r.content.slice(0, 200)}`);
  };
  await time(WARMUP, viaMcp);
  await time(WARMUP, viaWasm);
  // Interleaved rounds, so load changes on the machine hit both alike.
  const m = [];
  const w = [];
  for (let round = 0; round < 10; round++) {
    w.push(...(await time(CALLS / 10, viaWasm)));
    m.push(...(await time(CALLS / 10, viaMcp)));
  }
  const sm = stats(m);
  const sw = stats(w);
  console.log(`payload ${String(size).padStart(5)} B  wasm echo  p50 ${f(sw.p50)}  p99 ${f(sw.p99)}  max ${f(sw.max)}`);
  console.log(
    `payload ${String(size).padStart(5)} B  mcp echo   p50 ${f(sm.p50)}  p99 ${f(sm.p99)}  max ${f(sm.max)}  (p50 x${(sm.p50 / sw.p50).toFixed(2)} of wasm)`,
  );
}
await clients.close();
await host.close();
rmSync(state, { recursive: true, force: true });
rmSync(dir, { recursive: true, force: true });
