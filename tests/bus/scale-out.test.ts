/**
 * Scale-out at the bus level: 3 consumer processes share one durable consumer on a real
 * nats-server; 100 sessions, 2,000 messages. Each message's outcome is stored exactly once and
 * in order per session (see fixtures/consumer-child.ts), also when one process is `kill -9`ed in
 * the middle.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm, type KV } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { build } from "esbuild";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createNatsBus, type NatsBus, type NatsBusOptions } from "../../host/src/bus/nats/index.js";
import { inboundSubject } from "../../host/src/bus/subjects.js";
import { waitFor } from "./bus.suite.js";
import { NatsServer, TEST_TIMINGS } from "./nats-server.js";

const LONG = process.env.EXOCLAW_LONG_TESTS === "1";
const SESSIONS = 100;
const MESSAGES = LONG ? 10_000 : 2_000;
const BUS: Partial<NatsBusOptions> = { ...TEST_TIMINGS, partitions: 12 };

const repo = resolve(import.meta.dirname, "../..");
const bundleDir = join(repo, `.exoclaw-test-bus-${process.pid}`);
const childScript = join(bundleDir, "consumer-child.mjs");
const tmp = mkdtempSync(join(tmpdir(), "exoclaw-scale-"));

let server: NatsServer;
let nc: NatsConnection;

interface Child {
  proc: ChildProcess;
  id: string;
  lines: string[];
  ready: Promise<void>;
  exited: Promise<void>;
}

function startChild(id: string, bucket: string): Child {
  const cfg = { url: server.url, stateDir: join(tmp, `${bucket}-${id}`), instanceId: id, bucket, handlerDelayMs: 1, bus: BUS };
  const proc = spawn(process.execPath, [childScript, JSON.stringify(cfg)], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let buf = "";
  let stderr = "";
  let onReady: () => void = () => {};
  const ready = new Promise<void>((r) => (onReady = r));
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split("\n");
    buf = parts.pop()!;
    for (const l of parts) {
      if (l === "READY") onReady();
      else lines.push(l);
    }
  });
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((r) =>
    proc.once("exit", (code, signal) => {
      if (code !== 0 && signal !== "SIGKILL" && signal !== "SIGTERM") console.error(`consumer ${id} exited ${code}: ${stderr}`);
      r();
    }),
  );
  return { proc, id, lines, ready, exited };
}

async function sessionValues(kv: KV): Promise<Map<string, number>> {
  const values = new Map<string, number>();
  for (let s = 0; s < SESSIONS; s++) {
    const e = await kv.get(`s.peer${s}`);
    if (e && e.operation === "PUT") values.set(`peer${s}`, Number(e.string()));
  }
  return values;
}

beforeAll(async () => {
  await build({
    entryPoints: [join(import.meta.dirname, "fixtures/consumer-child.ts")],
    outfile: childScript,
    bundle: true,
    packages: "external",
    platform: "node",
    format: "esm",
    target: "node20",
    logLevel: "error",
  });
  server = await NatsServer.start();
  nc = await connect({ servers: server.url });
});

afterAll(async () => {
  await nc?.close();
  await server?.destroy();
  rmSync(bundleDir, { recursive: true, force: true });
  rmSync(tmp, { recursive: true, force: true });
});

const children: Child[] = [];
const buses: NatsBus[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) {
    c.proc.kill("SIGKILL");
    await c.exited;
  }
  await Promise.all(buses.splice(0).map((b) => b.close()));
  const jsm = await jetstreamManager(nc);
  for await (const name of jsm.streams.names()) await jsm.streams.delete(name);
});

async function run(bucket: string, killOne: boolean, joinLate = false) {
  const kv = await new Kvm(jetstream(nc)).create(bucket, { history: 1 });
  const started = Date.now();
  for (const id of joinLate ? ["c0", "c1"] : ["c0", "c1", "c2"]) children.push(startChild(id, bucket));
  await Promise.all(children.map((c) => c.ready));
  const publisher = await createNatsBus({ servers: server.url, stateDir: join(tmp, `${bucket}-pub`), ...BUS });
  buses.push(publisher);
  // let the three agree on the partitions before the flood
  await new Promise((r) => setTimeout(r, 1_500));

  const applied = () => children.reduce((n, c) => n + c.lines.filter((l) => l.startsWith("A ")).length, 0);
  let killedAt = -1;
  let killTime = 0;
  const pubStart = Date.now();
  const perSession = MESSAGES / SESSIONS;
  for (let n = 0; n < perSession; n++) {
    await Promise.all(
      Array.from({ length: SESSIONS }, (_, s) =>
        publisher.publish(inboundSubject({ channel: "telegram", account: "bot", peer: `peer${s}` }), { s: `peer${s}`, n }, { msgId: `${bucket}-${s}-${n}` }),
      ),
    );
    if (joinLate && children.length === 2 && applied() >= MESSAGES / 4) {
      // a third consumer joins under load: partitions are handed over gracefully
      children.push(startChild("c2", bucket));
    }
    if (killOne && killedAt < 0 && applied() >= MESSAGES / 4) {
      killedAt = applied();
      killTime = Date.now();
      children[0]!.proc.kill("SIGKILL");
    }
  }
  const publishMs = Date.now() - pubStart;
  if (joinLate && children.length === 2) {
    await waitFor(() => applied() >= MESSAGES / 4, 30_000, "a quarter handled");
    children.push(startChild("c2", bucket));
  }
  if (killOne && killedAt < 0) {
    await waitFor(() => applied() >= MESSAGES / 4, 30_000, "a quarter handled");
    killedAt = applied();
    killTime = Date.now();
    children[0]!.proc.kill("SIGKILL");
  }
  let lastValues = new Map<string, number>();
  const deadline = Date.now() + 60_000;
  for (;;) {
    lastValues = await sessionValues(kv);
    if ([...lastValues.values()].filter((v) => v === perSession - 1).length === SESSIONS) break;
    if (Date.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  const doneMs = Date.now() - started;
  await new Promise((r) => setTimeout(r, 1_000)); // late redeliveries would show up as D or V lines

  const all = children.flatMap((c) => c.lines);
  const violations = all.filter((l) => l.startsWith("V "));
  const dups = all.filter((l) => l.startsWith("D "));
  const perChild = children.map((c) => c.lines.filter((l) => l.startsWith("A ")).length);
  console.log(
    `scale-out${killOne ? " + kill -9" : ""}${joinLate ? " + late join" : ""}: ${MESSAGES} messages, ${SESSIONS} sessions, 3 consumers; published in ${publishMs} ms; ` +
      `all stored ${doneMs} ms after start; applied per consumer ${perChild.join("/")}; handler re-runs caught by the outcome check: ${dups.length}` +
      (killOne ? `; killed c0 after ${killedAt} applied, recovered ${Date.now() - killTime - 1000} ms later` : ""),
  );
  expect(violations).toEqual([]);
  for (let s = 0; s < SESSIONS; s++) expect(lastValues.get(`peer${s}`), `peer${s}`).toBe(perSession - 1);
  // every message's outcome was stored exactly once: the surviving logs account for each (n-1 -> n) step at most once
  const appliedIds = all.filter((l) => l.startsWith("A ")).map((l) => l.split(" ")[1]);
  expect(new Set(appliedIds).size).toBe(appliedIds.length);
  if (!killOne) {
    expect(appliedIds.length).toBe(MESSAGES);
    expect(dups).toEqual([]);
    if (!joinLate) expect(perChild.every((n) => n > 0)).toBe(true);
  } else {
    // the killed process may have stored outcomes it did not get to print; the others printed theirs
    expect(appliedIds.length).toBeGreaterThanOrEqual(MESSAGES - perChild[0]! - 50);
  }
}

describe("bus: scale-out over NATS (3 consumer processes)", () => {
  it(`100 sessions, ${MESSAGES} messages: each handled exactly once, in order per session`, async () => {
    await run("scale_a", false);
  }, 90_000);

  it(`the same with one consumer killed (kill -9) in the middle`, async () => {
    await run("scale_b", true);
  }, 90_000);

  it(`the same with a third consumer joining in the middle (graceful partition hand-over)`, async () => {
    await run("scale_c", false, true);
  }, 90_000);
});
