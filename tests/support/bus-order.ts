// The check shared by the NATS-outage ordering tests (tests/e2e/bus-order*.test.ts): 2 gateway
// processes behind a round-robin front (`postAll`), NATS killed (SIGKILL) in the middle of a
// burst and restarted; every peer's replies and session history must be in order, and no message
// may reach the model twice (issue 21, findings 5 and 6).
import { expect } from "vitest";
import {
  checkHistories,
  checkReplies,
  messageId,
  postAll,
  startBusGateways,
  waitForPartitionsSpread,
  waitForReplies,
  type BusGatewaysOptions,
  type BusGateways,
} from "./bus-gateways.js";

/** Options of {@link runOutageOrder}. */
export interface OutageOrderOptions {
  peers: number;
  perPeer: number;
  /** Kill nats-server once this many messages were accepted. */
  killAfter: number;
  /** How long nats-server stays down, ms. */
  downMs: number;
  /** Start one more gateway as soon as nats-server is back (the member set changes, so partitions move). */
  addGatewayAfterOutage?: boolean;
  /** Wait this long after `killAfter` before killing nats-server, ms (default 0: at once). */
  killDelayMs?: number;
  /** Extra `[bus]` keys. */
  bus?: Record<string, unknown>;
  /** Paces the posts (messages per second over all peers); default as fast as answered. */
  ratePerSec?: number;
  /** Set by the caller to stop the gateways in its `afterEach`. */
  onStarted: (g: BusGateways) => void;
  gatewayOptions?: BusGatewaysOptions;
}

/** What {@link runOutageOrder} measured (also printed). */
export interface OutageOrderReport {
  outOfOrderPeers: string[];
  historyProblems: string[];
  /** Model calls beyond one per message, and for which message numbers (`n`: the message's content). */
  extraModelCalls: number;
  extraCallsByN: Record<string, number>;
  /** Posts answered 503 (outage policy "refuse") and then re-posted. */
  failovers: number;
}

/** The text of the last user message of a recorded model request (Anthropic wire format). */
function lastUserText(body: any): string | undefined {
  const msgs = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i];
    if (m?.role !== "user") continue;
    if (typeof m.content === "string") return m.content;
    if (Array.isArray(m.content)) return m.content.map((c: any) => (typeof c?.text === "string" ? c.text : "")).join("");
  }
  return undefined;
}

/**
 * Runs the outage and checks it. Asserts: every message answered exactly once with its echo,
 * every peer's replies and history in order, one model call per message.
 */
export async function runOutageOrder(o: OutageOrderOptions): Promise<OutageOrderReport> {
  const partitions = 8;
  const h = await startBusGateways({
    gateways: 2,
    bus: { partitions, ack_wait_ms: 2_000, lease_ttl_ms: 5_000, ...o.bus },
    webhookLimits: { timeout_ms: 10_000, max_in_flight: 8, max_queued: 4_096 },
    ...o.gatewayOptions,
  });
  o.onStarted(h);
  await waitForPartitionsSpread(h, [0, 1], partitions);
  const peers = Array.from({ length: o.peers }, (_, s) => `peer${s}`);
  const total = peers.length * o.perPeer;
  const ids = peers.flatMap((p) => Array.from({ length: o.perPeer }, (_, n) => messageId(p, n)));
  const nats = h.nats!;
  let outage: Promise<void> | undefined;
  let killedAt = 0;
  let restartedAt = 0;
  const t0 = Date.now();
  const posted = await postAll(
    h,
    peers,
    o.perPeer,
    (n) => {
      if (outage === undefined && n >= o.killAfter) {
        outage = (async () => {
          if (o.killDelayMs !== undefined) await new Promise((r) => setTimeout(r, o.killDelayMs));
          await nats.stop("SIGKILL");
          killedAt = Date.now();
          await new Promise((r) => setTimeout(r, o.downMs));
          await nats.restart();
          restartedAt = Date.now();
          if (o.addGatewayAfterOutage === true) await h.addGateway();
        })();
      }
    },
    // each peer's messages alternate between the two gateways (a round-robin front per request)
    { first: (p, n) => p + n, ...(o.ratePerSec !== undefined ? { ratePerSec: o.ratePerSec } : {}) },
  );
  await outage;
  expect([...posted.statuses.values()].every((s) => s === 200)).toBe(true);
  try {
    await waitForReplies(h, ids, 150_000);
  } catch (err) {
    h.gateways.forEach((gw, i) =>
      console.log(
        `gateway ${i}:\n${gw.gateway.logs
          .filter((l) => Number(l.level) >= 40)
          .slice(0, 20)
          .map((l) => JSON.stringify(l))
          .join("\n")}`,
      ),
    );
    throw err;
  }
  const doneMs = Date.now() - t0;
  await new Promise((r) => setTimeout(r, 2_000)); // a late duplicate would show up here

  const check = checkReplies(h, peers, o.perPeer);
  const history = await checkHistories(h, 1, peers, o.perPeer);
  const byN = new Map<string, number>();
  for (const r of h.emulator.requests) {
    const n = lastUserText(r.body) ?? "?";
    byN.set(n, (byN.get(n) ?? 0) + 1);
  }
  const extraCallsByN: Record<string, number> = {};
  for (const [n, c] of byN) if (c !== peers.length) extraCallsByN[n] = c - peers.length;
  const report: OutageOrderReport = {
    outOfOrderPeers: check.outOfOrder.map((x) => x.peer),
    historyProblems: history.problems,
    extraModelCalls: h.emulator.requests.length - total,
    extraCallsByN,
    failovers: posted.failovers,
  };
  console.log(
    `bus order through an outage: ${total} messages, ${peers.length} peers, 2 gateways round robin; nats-server killed after ${o.killAfter} accepted, ` +
      `down ${restartedAt - killedAt} ms; ${posted.failovers} posts re-posted; all answered ${doneMs} ms after the first post; ` +
      `peers out of order: ${report.outOfOrderPeers.length} (replies), ${history.problems.length} history problems; ` +
      `model calls ${h.emulator.requests.length} (${report.extraModelCalls} extra, by message number ${JSON.stringify(extraCallsByN)}); ` +
      `replies per gateway ${[0, 1].map((i) => check.perGateway.get(i) ?? 0).join("/")}`,
  );
  // BUS_ORDER_DEBUG=<file>: every gateway log line, for diagnosing a failure
  if (process.env.BUS_ORDER_DEBUG) {
    const { writeFileSync } = await import("node:fs");
    writeFileSync(process.env.BUS_ORDER_DEBUG, h.gateways.map((gw, i) => gw.gateway.logs.map((l) => `gw${i} ${JSON.stringify(l)}`).join("\n")).join("\n"));
  }
  if (check.duplicated.length > 0) {
    const byId = h.repliesByReplyTo();
    console.log(
      `replies sent twice (first 5): ${check.duplicated
        .slice(0, 5)
        .map(
          ([id]) =>
            `${id}: ${byId
              .get(id)!
              .map((r) => `gw${h.senderOf(r)} at kill${h.replyTimes.get(r)! >= killedAt ? "+" : ""}${h.replyTimes.get(r)! - killedAt} ms`)
              .join(", ")}`,
        )
        .join("; ")}`,
    );
  }
  if (check.outOfOrder.length > 0) console.log(`first out-of-order peers: ${JSON.stringify(check.outOfOrder.slice(0, 3))}`);
  if (history.problems.length > 0) console.log(`first history problems:\n${history.problems.slice(0, 3).join("\n")}`);
  expect(check.missing).toEqual([]);
  expect(check.duplicated).toEqual([]);
  expect(check.wrongContent).toEqual([]);
  expect(check.outOfOrder).toEqual([]);
  expect(history).toEqual({ problems: [], reruns: [], rerunDetails: [] });
  expect(h.emulator.requests).toHaveLength(total);
  return report;
}
