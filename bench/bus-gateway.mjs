#!/usr/bin/env node
// Channel messages through a real gateway process, without and with the NATS bus, in one run:
// webhook POST (the generic `webhook` channel plugin, signed) -> agent turn against the provider
// emulator (instant) -> the reply on a local fake platform.
// - latency: one message at a time, from the POST to the reply's arrival (p50/p99/max);
// - throughput: M messages over S sessions, each session posting its next message as soon as the
//   previous one's webhook was answered, until the last reply arrives.
// Modes: no `[bus]` (in-process: the journal is the durable inbound), `[bus]` with the gateway's
// own embedded store, and `[bus]` + `[store] url = "nats://..."` (the JetStream session log, what
// several gateways share).
//
//   npm run bench:bus-gateway [-- --latency 200 --messages 800 --sessions 50 --modes local,nats,natsstore --journal on|off]
//
// Needs the host bundle and plugins (`npm run build`) and nats-server
// (`node scripts/ensure-nats.mjs` installs it).
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { spawnUntil, startNats, stats, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "bin", "exoclaw.js");
const SECRET = "bench-webhook-secret-0123456789";
const log = (s) => process.stderr.write(`${s}\n`);
const { values: args } = parseArgs({
  options: {
    latency: { type: "string", default: "200" },
    messages: { type: "string", default: "800" },
    sessions: { type: "string", default: "50" },
    modes: { type: "string", default: "local,nats,natsstore" },
    // `off`: the embedded store without exoclaw's write-ahead journal (`surrealkv://…?journal=off`), to compare
    journal: { type: "string", default: "on" },
  },
});
const LAT_N = Number(args.latency);
const MSGS = Number(args.messages);
const SESSIONS = Number(args.sessions);

/** The fake platform: resolves the waiter of each reply by its `replyTo` and records the arrival time. */
async function startPlatform() {
  const waiters = new Map();
  const arrived = new Map();
  const server = createHttpServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const at = performance.now();
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"ok":true}');
      let body;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
      } catch {
        return;
      }
      const id = body?.replyTo;
      if (typeof id !== "string") return;
      arrived.set(id, (arrived.get(id) ?? 0) + 1);
      waiters.get(id)?.(at);
      waiters.delete(id);
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    arrived,
    /** Resolves with the arrival time (performance.now()) of the reply to `id`. */
    reply(id) {
      return new Promise((resolve) => waiters.set(id, resolve));
    },
    close() {
      server.closeAllConnections();
      return new Promise((r) => server.close(r));
    },
  };
}

/** Writes the config, approves the webhook plugin and starts a gateway; resolves with `{proc, port, stateDir}`. */
async function startGateway(mode, emulatorUrl, platform, nats) {
  const stateDir = mkdtempSync(join(tmpdir(), "exoclaw-bench-busgw-"));
  const configFile = join(stateDir, "exoclaw.toml");
  const lines = [
    "[channels.webhook]",
    'allow = ["*"]',
    "[plugins.grants.webhook]",
    'http = { hosts = ["127.0.0.1"] }',
    `config = { base_url = "${platform.url}/inbox" }`,
    'secrets = { WEBHOOK_SECRET = { env = "BENCH_WEBHOOK_SECRET" } }',
    // every post comes from 127.0.0.1: the per-address limits (meant for strangers) are off here
    "[gateway.webhooks]",
    "per_address_rate = 0",
    "per_address_in_flight = 100000",
  ];
  if (mode.bus) lines.push("[bus]", `url = "${nats.url}"`);
  if (mode.natsStore) lines.push("[store]", `url = "${nats.url}"`, `namespace = "bench${Date.now()}"`);
  else if (args.journal === "off") lines.push("[store]", `url = "surrealkv://${join(stateDir, "data")}?journal=off"`);
  writeFileSync(configFile, `${lines.join("\n")}\n`);
  const env = {
    ...process.env,
    EXOCLAW_STATE_DIR: stateDir,
    BENCH_WEBHOOK_SECRET: SECRET,
    ANTHROPIC_API_KEY: "sk-bench",
    ANTHROPIC_BASE_URL: emulatorUrl,
    EXOCLAW_LOG_LEVEL: "warn",
  };
  for (const k of Object.keys(env)) if (/^EXOCLAW_(?!STATE_DIR|LOG_LEVEL)/.test(k)) delete env[k];
  const approved = spawnSync(process.execPath, [CLI, "plugin", "approve", join(ROOT, "build", "plugins", "webhook.wasm"), "-c", configFile], {
    env,
    encoding: "utf8",
  });
  if (approved.status !== 0) throw new Error(`exoclaw plugin approve webhook.wasm failed: ${approved.stderr}`);
  // "gateway ready" is logged at info; keep the rest of the log quiet while measuring.
  const started = await spawnUntil([CLI, "gateway", "--port", "0", "--config", configFile], { ...env, EXOCLAW_LOG_LEVEL: "info" }, (l) =>
    l.msg === "gateway ready" ? l.port : undefined,
  );
  return { proc: started.proc, port: started.value, stateDir };
}

/** Webhook deliveries the gateway refused with 503 (overloaded, plugin busy) and the bench redelivered. */
let redelivered = 0;

/**
 * POSTs one signed message, redelivering after a 503 as platforms do (after its Retry-After, up
 * to 20 times); any other non-200 answer fails the bench.
 */
async function post(port, body) {
  const text = JSON.stringify(body);
  const sig = createHmac("sha256", SECRET).update(text).digest("hex");
  for (let attempt = 1; ; attempt++) {
    const res = await fetch(`http://127.0.0.1:${port}/webhook/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-exoclaw-signature": `sha256=${sig}` },
      body: text,
    });
    const answer = await res.text();
    if (res.status === 200) return;
    if (res.status !== 503 || attempt >= 20) throw new Error(`webhook answered ${res.status} for ${body.messageId}: ${answer.slice(0, 300)}`);
    redelivered++;
    await new Promise((r) => setTimeout(r, Number(res.headers.get("retry-after") ?? "1") * 1000));
  }
}

async function measure(mode, emulatorUrl, platform, nats) {
  const gw = await startGateway(mode, emulatorUrl, platform, nats);
  redelivered = 0;
  try {
    const one = async (peer, id) => {
      const replied = platform.reply(id);
      const t0 = performance.now();
      await post(gw.port, { peer, content: "hello from a channel, a short inbound message", messageId: id });
      return (await replied) - t0;
    };
    // Warm-up, which also waits for the NATS consumer to hold its partitions. 20 peers in turn,
    // so no session's history grows long.
    for (let i = 0; i < 30; i++) await one(`warm${i % 20}`, `${mode.key}-w-${i}`);
    const lat = [];
    for (let i = 0; i < LAT_N; i++) lat.push(await one(`lat${i % 20}`, `${mode.key}-l-${i}`));

    const perSession = Math.ceil(MSGS / SESSIONS);
    const ids = [];
    const replies = [];
    for (let s = 0; s < SESSIONS; s++) for (let n = 0; n < perSession; n++) ids.push(`${mode.key}-t-${s}-${n}`);
    for (const id of ids) replies.push(platform.reply(id));
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: SESSIONS }, async (_, s) => {
        for (let n = 0; n < perSession; n++) await post(gw.port, { peer: `tp${s}`, content: `message ${n}`, messageId: `${mode.key}-t-${s}-${n}` });
      }),
    );
    const postMs = performance.now() - t0;
    const last = Math.max(...(await Promise.all(replies)));
    const totalMs = last - t0;
    const dup = ids.filter((id) => platform.arrived.get(id) !== 1).length;
    const l = stats(lat);
    return {
      label: mode.label,
      p50: l.p50,
      p99: l.p99,
      max: l.max,
      rate: (ids.length / totalMs) * 1000,
      postRate: (ids.length / postMs) * 1000,
      n: ids.length,
      dup,
      redelivered,
    };
  } finally {
    await stop(gw.proc);
    rmSync(gw.stateDir, { recursive: true, force: true });
  }
}

const ALL_MODES = [
  { key: "local", label: "no [bus] (in-process)", bus: false, natsStore: false },
  { key: "nats", label: "[bus] NATS, embedded store", bus: true, natsStore: false },
  { key: "natsstore", label: "[bus] NATS + JetStream store", bus: true, natsStore: true },
];
const MODES = args.modes.split(",").map((k) => {
  const m = ALL_MODES.find((x) => x.key === k.trim());
  if (!m) throw new Error(`--modes: unknown mode "${k}" (expected ${ALL_MODES.map((x) => x.key).join(", ")})`);
  return m;
});

const emulator = await spawnUntil([join(ROOT, "tests/support/emulator/main.mjs"), "--no-record"], {}, (l) => l.url);
const platform = await startPlatform();
const nats = await startNats();
const results = [];
try {
  for (const mode of MODES) {
    log(`measuring: ${mode.label} ...`);
    results.push(await measure(mode, emulator.value, platform, nats));
  }
} finally {
  await nats.stop();
  await platform.close();
  await stop(emulator.proc);
}

const f = (x, d = 1) => x.toFixed(d);
const base = results[0];
const out = [
  `## Webhook -> reply through one gateway process, without and with the NATS bus (${LAT_N} sequential, then ${results[0].n} messages over ${SESSIONS} sessions)`,
  "",
  "| mode | latency p50 | p99 | max | throughput | webhook answers | redelivered after 503 | vs no bus (p50 / throughput) |",
  "|---|---|---|---|---|---|---|---|",
  ...results.map(
    (r) =>
      `| ${r.label} | ${f(r.p50)} ms | ${f(r.p99)} ms | ${f(r.max)} ms | ${f(r.rate, 0)} msg/s | ${f(r.postRate, 0)} /s | ${r.redelivered} | ${f(r.p50 / base.p50, 2)}x / ${f(r.rate / base.rate, 2)}x |`,
  ),
];
console.log(out.join("\n"));
const dups = results.filter((r) => r.dup > 0);
if (dups.length > 0) {
  console.error(`replies not exactly once: ${dups.map((r) => `${r.label}: ${r.dup}`).join(", ")}`);
  process.exitCode = 1;
}
