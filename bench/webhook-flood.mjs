#!/usr/bin/env node
// Webhook flood against a real gateway process, each post from its own loopback source address (the generic `webhook` channel plugin, default
// `[gateway.webhooks]` limits): the gateway's resident memory before, right after, and a few
// seconds after N large posts sent C at a time, once without the signature header (answered 401
// from the head: no body read, no plugin call) and once with a forged one (bodies read within the
// in-flight budget, checked by the plugin, answered 401; over the budget 503; over the
// per-address rate 429). While each flood runs, one correctly signed delivery is posted; its
// status is printed (200 = it got through).
//
//   node bench/webhook-flood.mjs [--posts 1000 --concurrency 300 --body-kib 1024 --budget-mib 64]
//
// Needs the host bundle and plugins (`npm run build`). Prints one JSON line per flood.
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { rssMb, spawnUntil, stop } from "./lib.mjs";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const CLI = join(ROOT, "bin", "exoclaw.js");
const SECRET = "bench-webhook-secret-0123456789";
const { values: opts } = parseArgs({
  options: {
    posts: { type: "string", default: "1000" },
    concurrency: { type: "string", default: "300" },
    "body-kib": { type: "string", default: "1024" },
    "budget-mib": { type: "string" },
  },
});
const POSTS = Number(opts.posts);
const CONCURRENCY = Number(opts.concurrency);
const BODY = Buffer.alloc(Number(opts["body-kib"]) * 1024, 0x20);

const stateDir = mkdtempSync(join(tmpdir(), "exoclaw-bench-flood-"));
const configFile = join(stateDir, "exoclaw.toml");
// The body limit is raised to the flood's body size so that the budget, not the 413, is measured.
const lines = [
  "[channels.webhook]",
  'allow = ["*"]',
  `max_body_bytes = ${Math.max(BODY.length + 1024, 1024 * 1024)}`,
  "[plugins.grants.webhook]",
  'http = { hosts = ["127.0.0.1"] }',
  'config = { base_url = "http://127.0.0.1:9/inbox" }',
  'secrets = { WEBHOOK_SECRET = { env = "BENCH_WEBHOOK_SECRET" } }',
];
if (opts["budget-mib"] !== undefined) lines.push("[gateway.webhooks]", `max_in_flight_bytes = ${Number(opts["budget-mib"]) * 1024 * 1024}`);
writeFileSync(configFile, `${lines.join("\n")}\n`);
const env = {
  ...process.env,
  EXOCLAW_STATE_DIR: stateDir,
  BENCH_WEBHOOK_SECRET: SECRET,
  ANTHROPIC_API_KEY: "sk-bench",
  ANTHROPIC_BASE_URL: "http://127.0.0.1:9",
};
for (const k of Object.keys(env)) if (/^EXOCLAW_(?!STATE_DIR)/.test(k)) delete env[k];
const approved = spawnSync(process.execPath, [CLI, "plugin", "approve", join(ROOT, "build", "plugins", "webhook.wasm"), "-c", configFile], {
  env,
  encoding: "utf8",
});
if (approved.status !== 0) throw new Error(`exoclaw plugin approve webhook.wasm failed: ${approved.stderr}`);
const { proc, value: port } = await spawnUntil([CLI, "gateway", "--port", "0", "--config", configFile], { ...env, EXOCLAW_LOG_LEVEL: "info" }, (l) =>
  l.msg === "gateway ready" ? l.port : undefined,
);

// Why requests failed (500: the plugin's parse failed; 503: busy or over budget), counted by message.
const errors = new Map();
proc.stdout.setEncoding("utf8");
proc.stdout.on("data", (chunk) => {
  for (const line of chunk.split("\n")) {
    if (!line.includes('"level":50') && !line.includes('"level":40')) continue;
    try {
      const l = JSON.parse(line);
      const key = `${l.msg}${l.error ? `: ${String(l.error).slice(0, 120)}` : ""}`;
      errors.set(key, (errors.get(key) ?? 0) + 1);
    } catch {}
  }
});

const agent = new Agent({ keepAlive: false, maxSockets: CONCURRENCY });

let sources = 0;
/** A new source address in 127.2.0.0/16 (Linux routes all of 127/8 to loopback): many senders, not one. */
const source = () => {
  const n = sources++ % 65000;
  return `127.2.${Math.floor(n / 250)}.${(n % 250) + 1}`;
};

/** One POST from `localAddress`; resolves with its status (-1 when the connection failed, e.g. reset after an early answer). */
function post(headers, body, localAddress) {
  return new Promise((resolve) => {
    const req = request(
      {
        host: "127.0.0.1",
        port,
        path: "/webhook/webhook",
        method: "POST",
        agent,
        localAddress,
        headers: { "content-type": "application/json", "content-length": String(body.length), ...headers },
      },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
        res.on("error", () => resolve(-1));
      },
    );
    req.on("error", () => resolve(-1));
    req.end(body);
  });
}

async function flood(name, headers) {
  const before = rssMb(proc.pid);
  const statuses = new Map();
  let next = 0;
  const worker = async () => {
    while (next < POSTS) {
      next++;
      const s = await post(headers, BODY, source());
      statuses.set(s, (statuses.get(s) ?? 0) + 1);
    }
  };
  const t0 = performance.now();
  const workers = Array.from({ length: CONCURRENCY }, worker);
  // One genuine delivery in the middle of the flood.
  await new Promise((r) => setTimeout(r, 200));
  const text = JSON.stringify({ peer: "alice", content: `through the ${name} flood`, messageId: `flood-${name}` });
  const signedStatus = await post(
    { "x-exoclaw-signature": `sha256=${createHmac("sha256", SECRET).update(text).digest("hex")}` },
    Buffer.from(text),
    "127.0.0.1",
  );
  await Promise.all(workers);
  const ms = performance.now() - t0;
  const after = rssMb(proc.pid);
  await new Promise((r) => setTimeout(r, 3000));
  const settled = rssMb(proc.pid);
  const log = Object.fromEntries(errors);
  errors.clear();
  console.log(
    JSON.stringify({
      flood: name,
      posts: POSTS,
      concurrency: CONCURRENCY,
      bodyKiB: BODY.length / 1024,
      ms: Math.round(ms),
      statuses: Object.fromEntries([...statuses].sort()),
      signedDeliveryStatus: signedStatus,
      log,
      rssMb: { before: Math.round(before), after: Math.round(after), after3s: Math.round(settled) },
    }),
  );
}

try {
  await flood("unsigned", {});
  await flood("forged-signature", { "x-exoclaw-signature": "sha256=00" });
} finally {
  agent.destroy();
  await stop(proc);
  rmSync(stateDir, { recursive: true, force: true });
}
