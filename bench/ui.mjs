#!/usr/bin/env node
// `npm run bench:ui`: what the Control UI costs and how fast it comes up.
//
// 1. Bundle: the built UI (ui/dist, `npm run build:ui`), bytes raw and gzip -9 (what the gateway
//    serves to browsers that accept gzip). Target: <= 150 KB gzipped.
// 2. Time to interactive on loopback: Debian's chromium (scripts/ensure-chromium.mjs) opens
//    `http://127.0.0.1:<port>/` of a token-less loopback gateway in a fresh browser context (cold
//    cache) and, in the same context again (warm: hashed assets come from the cache); "interactive"
//    = the Overview rendered live data from the WebSocket and HTTP (connected, `status`, `/health`,
//    `/ready` answered): the page's `exoclaw:interactive` performance mark (ms since navigation
//    start). A page without script (`/ready`) loaded in the same browser gives the machine's floor.
//    Target: <= 1 s.
// 3. Turn overhead with the UI open: sequential `chat.send` turns ("ping", emulator) on one
//    gateway, each phase on its own 10 sessions, in alternating phases with no tab open and with
//    5 tabs open, two mixes: `overview` (4 on Overview, each
//    subscribed to the `status` topic — computed once a second for all of them and pushed — and
//    fetching /metrics every 10 s and usage.summary every minute; 1 on Logs, subscribed to
//    `logs:info`, pushed at most every 500 ms) and `busy` (Overview, the Sessions list, the
//    live timeline of a session the turns write, Logs, Agents). Reported: turn p50 (client-side, ms) and gateway
//    CPU per turn (ms, /proc) in each phase, and the p50 ratio 5 tabs / no tab. Chromium itself
//    competes for the same cores, so the latency delta is an upper bound; the CPU per turn is the
//    gateway's own cost.
// 4. What the tabs cost the gateway while no turn runs: gateway CPU over --idle seconds with no
//    tab, with the same 5 tabs open, and with no tab again; and the requests the tabs sent meanwhile (WebSocket RPC
//    requests, HTTP requests) and the pushes they received.
// Options: --loads N (cold + warm page loads, default 10), --turns N (per phase, 300), --rounds N (4),
// --sessions N (sessions per phase, 10), --idle S (20).
import { gzipSync } from "node:zlib";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "@playwright/test";
import { Packr, Unpackr } from "msgpackr";
import WebSocket from "ws";
import { ensureChromium } from "../scripts/ensure-chromium.mjs";
import { startEmulator } from "../tests/support/emulator/server.mjs";
import { connect, cpuMs, spawnUntil, stats, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    idle: { type: "string", default: "20" },
    loads: { type: "string", default: "10" },
    turns: { type: "string", default: "300" },
    rounds: { type: "string", default: "4" },
    sessions: { type: "string", default: "10" },
  },
});
const LOADS = Number(opts.loads);
const TURNS = Number(opts.turns);
const ROUNDS = Number(opts.rounds);
const IDLE_MS = Number(opts.idle) * 1000;
const SESSIONS = Number(opts.sessions);
/**
 * The tab mixes, 5 routes each (`key`: the session the phase's first peer talks to, which gets
 * every SESSIONS-th turn). `overview`: the status topic x4 and the logs tail. `busy`: every topic
 * a turn moves: the sessions list (`sessions` topic), a live timeline (`session:<key>`), the
 * Agents page (`agents` topic), the logs tail, the Overview. `busy, protocol only`: the same
 * topics held by 5 WebSocket clients (no browser: the gateway's own cost, without Chromium's
 * renderers on the same cores).
 */
const MIXES = {
  overview: () => ["overview", "overview", "overview", "overview", "logs"],
  busy: (key) => ["overview", "sessions", `sessions/${encodeURIComponent(key)}`, "logs", "agents"],
  "busy, protocol only": (key) => ["status", "sessions", `session:${key}`, "logs:info", "agents"].map((t) => `topic ${t}`),
};
/** The mix held by 5 WebSocket clients, no browser. */
const PROTOCOL_ONLY = "busy, protocol only";
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const log = (s) => process.stderr.write(`${s}\n`);
const f = (n, d = 1) => (Number.isFinite(n) ? n.toFixed(d) : "n/a");

function bundleSizes() {
  const dist = join(ROOT, "ui", "dist");
  const files = [join(dist, "index.html"), ...readdirSync(join(dist, "assets")).map((n) => join(dist, "assets", n))];
  let raw = 0;
  let gz = 0;
  const rows = [];
  for (const file of files) {
    const body = readFileSync(file);
    const g = gzipSync(body, { level: 9 }).byteLength;
    raw += statSync(file).size;
    gz += g;
    rows.push({ file: file.slice(dist.length + 1), raw: body.byteLength, gzip: g });
  }
  return { raw, gz, rows };
}

async function main() {
  log(
    `load average at start: ${loadavg()
      .map((x) => x.toFixed(2))
      .join(" ")}`,
  );
  const b = bundleSizes();
  console.log("# UI bundle (ui/dist)");
  for (const r of b.rows) console.log(`  ${r.file.padEnd(32)} ${String(r.raw).padStart(8)} B  ${String(r.gzip).padStart(7)} B gzip`);
  console.log(`  total ${b.raw} B, ${f(b.gz / 1024)} KB gzipped (target <= 150 KB)`);

  const emulator = await startEmulator({ record: false });
  const state = mkdtempSync(join(tmpdir(), "exoclaw-bench-ui-"));
  const gw = await spawnUntil(
    [join(ROOT, "bin/exoclaw.js"), "gateway", "--port", "0"],
    { EXOCLAW_STORE: "memory", EXOCLAW_STATE_DIR: state, EXOCLAW_LOG_LEVEL: "info", ANTHROPIC_API_KEY: "sk-bench", ANTHROPIC_BASE_URL: emulator.url },
    (l) => (l.msg === "gateway ready" ? l : undefined),
  );
  const base = `http://127.0.0.1:${gw.value.port}`;
  const browser = await chromium.launch({
    executablePath: ensureChromium({ quiet: true }),
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  try {
    const interactive = async (page) => {
      await page.getByTestId("health").filter({ hasText: "ok" }).waitFor({ timeout: 20_000 });
      // The page's own mark (ui/src/pages/overview.tsx), ms since navigation start: Playwright's
      // polling and round trips are not in it.
      return page.evaluate(() => performance.getEntriesByName("exoclaw:interactive")[0].startTime);
    };
    const cold = [];
    const warm = [];
    const floor = [];
    for (let i = 0; i < LOADS; i++) {
      const ctx = await browser.newContext();
      const page = await ctx.newPage();
      await page.goto(`${base}/#/overview`);
      cold.push(await interactive(page));
      await page.goto("about:blank");
      await page.goto(`${base}/#/overview`);
      warm.push(await interactive(page));
      // The floor on this machine now: a page with no script (the /ready JSON), loaded.
      await page.goto(`${base}/ready`);
      floor.push(await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd));
      await ctx.close();
    }
    const c = stats(cold);
    const w = stats(warm);
    console.log("# Time to interactive on loopback (Overview rendered from the live WebSocket), ms");
    console.log(`  cold cache: p50 ${f(c.p50)}  max ${f(c.max)}  (n=${c.n})`);
    console.log(`  warm cache: p50 ${f(w.p50)}  max ${f(w.max)}  (n=${w.n})  target <= 1000`);
    const fl = stats(floor);
    console.log(`  floor (GET /ready, no script, loaded): p50 ${f(fl.p50)}  max ${f(fl.max)}`);

    const client = await connect(`ws://127.0.0.1:${gw.value.port}/ws`);
    // Each phase talks to its own sessions, turn i to session i % SESSIONS (so TURNS / SESSIONS
    // turns each): a session's history, and so a turn's cost, grows with its turns, so phases
    // must not share sessions (the figure of an earlier version, 1.53x, was that growth: one
    // session for every phase, the tab phases always later than their no-tab twins).
    const peerOf = (id, i) => `${id}-${i % SESSIONS}`;
    const first = await client.send("ping", "warm-0");
    const keyOf = (peer) => first.sessionKey.replace(/warm-0$/, peer);
    for (let i = 0; i < 100; i++) await client.send("ping", peerOf("warm", i)); // warm-up
    const phase = async (id) => {
      const samples = [];
      const cpu0 = cpuMs(gw.proc.pid);
      for (let i = 0; i < TURNS; i++) {
        const t = performance.now();
        await client.send("ping", peerOf(id, i));
        samples.push(performance.now() - t);
      }
      return { samples, cpuPerTurn: (cpuMs(gw.proc.pid) - cpu0) / TURNS };
    };
    /** Opens the mix's 5 tabs in a fresh context, each rendered (its first reads answered). */
    const openTabs = async (mix, id) => {
      if (mix === PROTOCOL_ONLY) return openSubscribers(keyOf(peerOf(id, 0)));
      const ctx = await browser.newContext();
      for (const route of MIXES[mix](keyOf(peerOf(id, 0)))) {
        const p = await ctx.newPage();
        await p.goto(`${base}/#/${route}`);
        const ready =
          route === "logs" ? p.getByTestId("log-lines") : route === "overview" ? p.getByTestId("health").filter({ hasText: "ok" }) : p.locator("section h2");
        await ready.first().waitFor({ timeout: 20_000 });
      }
      await new Promise((r) => setTimeout(r, 1500)); // the pages' first reads (usage.summary, /metrics, sessions.list) are done
      return ctx;
    };
    /**
     * The `busy` mix's topics held by 5 plain WebSocket clients (MessagePack, as the page speaks)
     * instead of Chromium tabs: what the pushes cost the gateway without 5 renderers competing
     * for the cores.
     */
    const openSubscribers = async (key) => {
      const packr = new Packr({ useRecords: false });
      const sockets = [];
      for (const topics of [["status"], ["sessions"], [`session:${key}`], ["logs:info"], ["agents"]]) {
        const ws = new WebSocket(`ws://127.0.0.1:${gw.value.port}/ws`, { perMessageDeflate: false });
        await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
        const answered = new Promise((resolve) => ws.once("message", resolve));
        ws.send(packr.pack({ jsonrpc: "2.0", id: 1, method: "events.subscribe", params: { topics } }));
        await answered;
        ws.on("message", (data) => unpackr.unpack(data)); // decoded, as a page would
        sockets.push(ws);
      }
      await new Promise((r) => setTimeout(r, 1500));
      return { close: async () => sockets.forEach((ws) => ws.close()) };
    };
    const results = {};
    let phaseNo = 0;
    for (const mix of Object.keys(MIXES)) {
      const none = { samples: [], cpu: [] };
      const five = { samples: [], cpu: [] };
      for (let r = 0; r < ROUNDS; r++) {
        // Alternating order (none, tabs | tabs, none | ...): a drift over the run counts on both sides.
        for (const withTabs of r % 2 === 0 ? [false, true] : [true, false]) {
          const id = `p${phaseNo++}`;
          const ctx = withTabs ? await openTabs(mix, id) : undefined;
          const a = await phase(id);
          await ctx?.close();
          const into = withTabs ? five : none;
          into.samples.push(...a.samples);
          into.cpu.push(a.cpuPerTurn);
        }
      }
      results[mix] = { none, five };
    }
    // 4. Idle cost: no tab, then 5 tabs, nothing else running.
    await new Promise((r) => setTimeout(r, 2000));
    let c0 = cpuMs(gw.proc.pid);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleNone = cpuMs(gw.proc.pid) - c0;
    const idleCtx = await browser.newContext();
    const counts = { rpc: 0, http: 0, pushes: 0 };
    idleCtx.on("request", () => counts.http++);
    for (let i = 0; i < 5; i++) {
      const p = await idleCtx.newPage();
      p.on("websocket", (ws) => {
        ws.on("framesent", () => counts.rpc++);
        ws.on("framereceived", (f) => {
          const m = typeof f.payload === "string" ? JSON.parse(f.payload) : unpackr.unpack(f.payload);
          if (m.method === "event") counts.pushes++;
        });
      });
      await p.goto(`${base}/#/${i === 4 ? "logs" : "overview"}`);
      await (i === 4 ? p.getByTestId("log-lines").waitFor() : p.getByTestId("health").filter({ hasText: "ok" }).waitFor());
    }
    await new Promise((r) => setTimeout(r, 2000));
    Object.assign(counts, { rpc: 0, http: 0, pushes: 0 });
    c0 = cpuMs(gw.proc.pid);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleFive = cpuMs(gw.proc.pid) - c0;
    const seen = { ...counts };
    await idleCtx.close();
    // No tab again (a slow drift, or the turns' garbage collected late, counts on both sides).
    await new Promise((r) => setTimeout(r, 2000));
    c0 = cpuMs(gw.proc.pid);
    await new Promise((r) => setTimeout(r, IDLE_MS));
    const idleNoneAfter = cpuMs(gw.proc.pid) - c0;
    client.close();
    const cpu = (xs) => xs.reduce((x, y) => x + y, 0) / xs.length;
    console.log(
      `# Turn overhead with the UI open (sequential "ping" turns, ${ROUNDS} x ${TURNS} per phase, ${SESSIONS} sessions per phase, alternating order)`,
    );
    for (const [mix, { none, five }] of Object.entries(results)) {
      const sn = stats(none.samples);
      const s5 = stats(five.samples);
      const cn = cpu(none.cpu);
      const c5 = cpu(five.cpu);
      console.log(`  tabs: ${mix} (${MIXES[mix]("<key>").join(", ")})`);
      console.log(`    no tab:  p50 ${f(sn.p50, 2)} ms  p99 ${f(sn.p99, 2)} ms  gateway CPU ${f(cn, 2)} ms/turn`);
      console.log(`    5 tabs:  p50 ${f(s5.p50, 2)} ms  p99 ${f(s5.p99, 2)} ms  gateway CPU ${f(c5, 2)} ms/turn`);
      console.log(`    ratio 5 tabs / no tab: p50 ${f(s5.p50 / sn.p50, 3)}, gateway CPU per turn ${f(c5 / cn, 3)} (target <= 1.10)`);
    }
    const idleBase = (idleNone + idleNoneAfter) / 2;
    console.log(
      `# Idle (no turns), ${IDLE_MS / 1000} s each: gateway CPU no tab ${idleNone} ms, 5 tabs ${idleFive} ms, no tab again ${idleNoneAfter} ms (${f((idleFive - idleBase) / (IDLE_MS / 1000), 1)} ms/s for the tabs)`,
    );
    console.log(`  the tabs sent ${seen.rpc} WebSocket requests and ${seen.http} HTTP requests, and received ${seen.pushes} pushed frames`);
  } finally {
    await browser.close();
    await stop(gw.proc);
    await emulator.close();
    rmSync(state, { recursive: true, force: true });
    log(
      `load average at end: ${loadavg()
        .map((x) => x.toFixed(2))
        .join(" ")}`,
    );
  }
}

await main();
