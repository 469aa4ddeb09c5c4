#!/usr/bin/env node
// `node bench/ui-profile.mjs`: where the gateway's CPU goes when Control UI tabs are open during
// turns (a diagnostic for bench/ui.mjs's turn-overhead figure, not a benchmark). One gateway runs
// under V8's `--cpu-prof`; sequential "ping" turns run with no tab, then with 5 tabs (the
// `--mix busy|overview` of bench/ui.mjs), then with no tab again. Printed per phase: gateway CPU per turn (/proc), the frames
// and bytes the tabs received per turn, and the functions with the most self time per turn in
// each phase (profile samples sliced at the phase boundaries: both processes read
// CLOCK_MONOTONIC). Options: --turns N (300), --top N (25), --out DIR (keeps the .cpuprofile),
// --mix busy|overview (busy), --sessions N (10: turn i goes to session i % N of its phase).
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { chromium } from "@playwright/test";
import { Unpackr } from "msgpackr";
import { ensureChromium } from "../scripts/ensure-chromium.mjs";
import { startEmulator } from "../tests/support/emulator/server.mjs";
import { connect, cpuMs, spawnUntil, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const { values: opts } = parseArgs({
  options: {
    turns: { type: "string", default: "300" },
    top: { type: "string", default: "25" },
    out: { type: "string" },
    sessions: { type: "string", default: "10" },
    mix: { type: "string", default: "busy" },
  },
});
const TURNS = Number(opts.turns);
// Each phase talks to its own sessions (turn i to session i % --sessions), as bench/ui.mjs does.
const SESSIONS = Number(opts.sessions);
const peerOf = (id, i) => `${id}-${i % SESSIONS}`;
// The tab mixes of bench/ui.mjs (`key`: the session of the 5-tab phase's first peer).
const MIXES = {
  overview: () => ["overview", "overview", "overview", "overview", "logs"],
  busy: (key) => ["overview", "sessions", `sessions/${encodeURIComponent(key)}`, "logs", "agents"],
};
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });
const nowUs = () => Number(process.hrtime.bigint() / 1000n);

const emulator = await startEmulator({ record: false });
const state = mkdtempSync(join(tmpdir(), "exoclaw-ui-prof-"));
const profDir = opts.out ?? mkdtempSync(join(tmpdir(), "exoclaw-ui-cpuprof-"));
const gw = await spawnUntil(
  ["--cpu-prof", "--cpu-prof-dir", profDir, "--cpu-prof-interval", "200", join(ROOT, "bin/exoclaw.js"), "gateway", "--port", "0"],
  { EXOCLAW_STORE: "memory", EXOCLAW_STATE_DIR: state, EXOCLAW_LOG_LEVEL: "info", ANTHROPIC_API_KEY: "sk-bench", ANTHROPIC_BASE_URL: emulator.url },
  (l) => (l.msg === "gateway ready" ? l : undefined),
);
const base = `http://127.0.0.1:${gw.value.port}`;
const browser = await chromium.launch({ executablePath: ensureChromium({ quiet: true }), args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
const client = await connect(`ws://127.0.0.1:${gw.value.port}/ws`);
const first = await client.send("ping", "warm-0");
for (let i = 0; i < 100; i++) await client.send("ping", peerOf("warm", i));
const phases = [];
const frames = { n: 0, bytes: 0, byTopic: {} };
const run = async (name) => {
  Object.assign(frames, { n: 0, bytes: 0, byTopic: {} });
  const c0 = cpuMs(gw.proc.pid);
  const t0 = nowUs();
  for (let i = 0; i < TURNS; i++) await client.send("ping", peerOf(name.replaceAll(" ", "-"), i));
  const t1 = nowUs();
  phases.push({ name, t0, t1, cpuPerTurn: (cpuMs(gw.proc.pid) - c0) / TURNS, frames: { ...frames } });
};
await run("no tab");
const ctx = await browser.newContext();
for (const route of MIXES[opts.mix](first.sessionKey.replace(/warm-0$/, peerOf("5-tabs", 0)))) {
  const p = await ctx.newPage();
  p.on("websocket", (ws) =>
    ws.on("framereceived", (f) => {
      const m = typeof f.payload === "string" ? JSON.parse(f.payload) : unpackr.unpack(f.payload);
      frames.n++;
      frames.bytes += f.payload.length;
      const k = m.method === "event" ? m.params.topic : (m.method ?? "response");
      frames.byTopic[k] = (frames.byTopic[k] ?? 0) + 1;
    }),
  );
  await p.goto(`${base}/#/${route}`);
  await (route === "logs" ? p.getByTestId("log-lines") : route === "overview" ? p.getByTestId("health").filter({ hasText: "ok" }) : p.locator("section h2"))
    .first()
    .waitFor();
}
await new Promise((r) => setTimeout(r, 3000)); // the pages' first loads (usage.summary, /metrics) are done
await run("5 tabs");
await ctx.close();
await run("no tab again");
client.close();
await browser.close();
await stop(gw.proc);
await emulator.close();
rmSync(state, { recursive: true, force: true });

const file = readdirSync(profDir).find((n) => n.endsWith(".cpuprofile"));
const prof = JSON.parse(readFileSync(join(profDir, file), "utf8"));
const nodes = new Map(prof.nodes.map((n) => [n.id, n]));
const label = (n) => {
  const cf = n.callFrame;
  const url = cf.url.replace(/^.*\/(node_modules\/)?/, "");
  return `${cf.functionName || "(anonymous)"} ${url}:${cf.lineNumber + 1}`;
};
console.log(
  `load average: ${loadavg()
    .map((x) => x.toFixed(2))
    .join(" ")}`,
);
for (const ph of phases) {
  const self = new Map();
  let t = prof.startTime;
  let total = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i];
    if (t < ph.t0 || t > ph.t1) continue;
    const dt = prof.timeDeltas[i + 1] ?? 0;
    const n = nodes.get(prof.samples[i]);
    if (n.callFrame.functionName === "(idle)") continue;
    const k = label(n);
    self.set(k, (self.get(k) ?? 0) + dt);
    total += dt;
  }
  const perTurn = (us) => (us / 1000 / TURNS).toFixed(3);
  console.log(
    `\n## ${ph.name}: ${TURNS} turns in ${((ph.t1 - ph.t0) / 1000).toFixed(0)} ms, gateway CPU ${ph.cpuPerTurn.toFixed(2)} ms/turn (/proc), profiled JS+native ${perTurn(total)} ms/turn`,
  );
  console.log(
    `   tabs received ${(ph.frames.n / TURNS).toFixed(2)} frames/turn, ${(ph.frames.bytes / TURNS).toFixed(0)} B/turn: ${JSON.stringify(ph.frames.byTopic)}`,
  );
  for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).slice(0, Number(opts.top))) console.log(`   ${perTurn(us).padStart(7)} ms  ${k}`);
}
if (opts.out === undefined) rmSync(profDir, { recursive: true, force: true });
