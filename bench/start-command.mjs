// How long the README's run command takes to serve /health, per way of starting the gateway:
// from spawn to the gateway's own "gateway ready" log line, and from that line to the first
// `GET /health` answered 200. Each command runs in a fresh state directory, `--port 0` (the port
// is read from the ready line), `EXOCLAW_STORE=memory` except the two durable rows (the default
// store, embedded SurrealDB behind the journal: in a fresh state directory, then again and again
// on one state directory whose store exists), `npm_config_offline=true` (npm must never reach the
// registry here). Issue 13's target: the durable rows <= 250 ms on the quiet 2-core machine; the
// load average is printed before and after. `npx exoclaw` is not measured: inside this package npm
// finds no `exoclaw` in node_modules/.bin (a package's own bin is not linked into itself) and asks
// the registry for a package of that name (~13 s, and it would run whatever is published under it).
//
//   node bench/start-command.mjs [rounds=3]
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const rounds = Number(process.argv[2] ?? 3);
const COMMANDS = {
  "node bin/exoclaw.js gateway": ["node", ["bin/exoclaw.js", "gateway", "--port", "0"]],
  "npm start": ["npm", ["start", "--silent", "--", "--port", "0"]],
  "node bin/exoclaw.js (durable)": ["node", ["bin/exoclaw.js", "gateway", "--port", "0"], { EXOCLAW_STORE: "" }],
  // The same state directory every round (a round before the measured ones creates the store).
  "durable, existing store": ["node", ["bin/exoclaw.js", "gateway", "--port", "0"], { EXOCLAW_STORE: "" }, { reuse: true }],
};

/** One start: ms from spawn to the ready line and from the ready line to /health 200. */
async function once(cmd, args, extraEnv = {}, shared = undefined) {
  const state = shared ?? mkdtempSync(join(tmpdir(), "exoclaw-start-"));
  const t0 = performance.now();
  const proc = spawn(cmd, args, {
    cwd: ROOT,
    env: { ...process.env, EXOCLAW_STATE_DIR: state, EXOCLAW_STORE: "memory", npm_config_offline: "true", npm_config_update_notifier: "false", ...extraEnv },
    stdio: ["ignore", "pipe", "inherit"],
    detached: true,
  });
  try {
    const { port, readyAt } = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${cmd}: not ready in 60 s`)), 60_000);
      createInterface({ input: proc.stdout }).on("line", (line) => {
        try {
          const e = JSON.parse(line);
          if (e.msg === "gateway ready") {
            clearTimeout(timer);
            resolve({ port: e.port, readyAt: performance.now() });
          }
        } catch {}
      });
    });
    for (;;) {
      const ok = await fetch(`http://127.0.0.1:${port}/health`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) return { ready: readyAt - t0, health: performance.now() - readyAt };
      await new Promise((r) => setTimeout(r, 5));
    }
  } finally {
    process.kill(-proc.pid, "SIGTERM");
    await new Promise((r) => proc.once("exit", r));
    if (shared === undefined) rmSync(state, { recursive: true, force: true });
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(
  `start command -> /health, median of ${rounds} (load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")})`,
);
const results = {};
for (const [name, [cmd, args, extraEnv, { reuse = false } = {}]] of Object.entries(COMMANDS)) {
  const shared = reuse ? mkdtempSync(join(tmpdir(), "exoclaw-start-")) : undefined;
  if (shared !== undefined) await once(cmd, args, extraEnv, shared);
  const runs = [];
  for (let i = 0; i < rounds; i++) runs.push(await once(cmd, args, extraEnv, shared));
  if (shared !== undefined) rmSync(shared, { recursive: true, force: true });
  results[name] = { ready: median(runs.map((r) => r.ready)), health: median(runs.map((r) => r.health)) };
}
const base = results["node bin/exoclaw.js gateway"].ready;
console.log(
  `load at the end: ${loadavg()
    .map((l) => l.toFixed(2))
    .join(" ")}`,
);
for (const [name, r] of Object.entries(results)) {
  console.log(
    `${name.padEnd(30)} spawn->ready ${r.ready.toFixed(0).padStart(6)} ms (x${(r.ready / base).toFixed(2)})   ready->/health ${r.health.toFixed(1)} ms`,
  );
}
