// Test harness for several real gateway processes sharing work over a message bus: one
// nats-server (JetStream, temporary store, free loopback port; tests/bus/nats-server.ts), N
// gateway processes — each with its own state directory (its spool) and the same `[bus] url`
// and `[store] url = "nats://..."` (the JetStream session log, so any gateway can continue any
// session) — the first-party `webhook` channel plugin, one fake platform and one provider
// emulator shared by all of them. Without NATS (`nats: false`) it starts gateways with no `[bus]`
// and their default per-process store: the in-process mode.
//
// Each gateway's plugin sends its replies to `<platform>/gw<i>`, so the fake platform's request
// path says which process answered a message (work sharing, hand-over after a kill) without
// relying on log wording. Every platform request is time-stamped on arrival (`replyTimes`).
import type { FileConfig } from "../../host/src/config/schema.js";
import { NatsServer } from "../bus/nats-server.js";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  type ChannelGateway,
  type FakePlatform,
  type PlatformRequest,
  type WebhookAnswer,
  webhookGrant,
} from "./channel-gateway.js";
import { startEmulator, type Emulator, type EmulatorOptions } from "./emulator/server.mjs";
import { RpcClient } from "./gateway.js";

/** The webhook plugin's HMAC secret in every gateway of a {@link BusGateways}. */
export const BUS_WEBHOOK_SECRET = "bus-e2e-webhook-secret-0123456789";

/** Options of {@link startBusGateways}. */
export interface BusGatewaysOptions {
  /** How many gateway processes to start (default 1). More can be added with `addGateway`. */
  gateways?: number;
  /**
   * true (default): start a nats-server and give every gateway `[bus] url` and
   * `[store] url = "nats://..."`. false: no NATS at all (in-process bus, per-process store).
   */
  nats?: boolean;
  /**
   * Store the sessions in NATS too (default: same as `nats`). false with `nats: true` gives one
   * gateway with `[bus]` but its own embedded store (the outage test: the store must not depend
   * on the server that is being stopped).
   */
  natsStore?: boolean;
  /** Extra `[bus]` keys (snake_case, as in exoclaw.toml), e.g. `{ partitions: 8, max_deliver: 3 }`. */
  bus?: Record<string, unknown>;
  /**
   * Where the gateways get the NATS URL of the bus: `[bus] url` (default) or the environment
   * variable `EXOCLAW_NATS_URL` (the `[bus]` table then holds only the other keys).
   */
  natsUrlFrom?: "config" | "env";
  /** Extra top-level exoclaw.toml tables (e.g. `agents`), merged over the harness's. */
  config?: Record<string, unknown>;
  /**
   * `[plugins.limits.webhook]` (snake_case: `timeout_ms`, `max_in_flight`, `max_queued`, ...);
   * default `{ timeout_ms: 10_000 }` (the host's other defaults).
   */
  webhookLimits?: Record<string, number>;
  /** `[channels.webhook] allow` (default `["*"]`). */
  allow?: string[];
  /** Extra environment for every gateway. */
  env?: Record<string, string>;
  /** Extra command-line arguments of every gateway (e.g. `--plugins-dir`). */
  args?: string[];
  /** Options of the shared provider emulator. */
  emulator?: EmulatorOptions;
}

/** A parsed signed webhook message of the generic webhook plugin. */
export interface WebhookMessage {
  peer: string;
  content: string;
  messageId: string;
}

/** N gateways on one bus, with their NATS server, emulator and fake platform. */
export interface BusGateways {
  /** The nats-server (absent with `nats: false`); `stop()`/`restart()` it to make an outage. */
  nats?: NatsServer;
  emulator: Emulator;
  platform: FakePlatform;
  /** The gateways by index (a killed one stays in the list; see `alive`). */
  gateways: ChannelGateway[];
  /** Arrival time (ms since the epoch) of each platform request. */
  replyTimes: WeakMap<PlatformRequest, number>;
  /** True while gateway `i`'s process has not exited. */
  alive(i: number): boolean;
  /** Starts one more gateway with the same configuration; returns its index. */
  addGateway(): Promise<number>;
  /**
   * Posts one signed webhook message to gateway `i` (`/webhook/webhook`, account "default").
   * Rejects when the connection fails (e.g. the process is dead); an HTTP error status resolves.
   */
  post(i: number, message: WebhookMessage): Promise<WebhookAnswer>;
  /** `kill -9` of gateway `i`; resolves when the process has exited. */
  kill(i: number): Promise<void>;
  /** Replies on the platform, by the `replyTo` (platform message id) they answer. */
  repliesByReplyTo(): Map<string, PlatformRequest[]>;
  /** Index of the gateway that sent a platform request (from its path `/gw<i>`), or -1. */
  senderOf(req: PlatformRequest): number;
  /** Calls an RPC method on gateway `i` over a fresh WebSocket; returns the result or throws the error. */
  rpc(i: number, method: string, params?: unknown): Promise<any>;
  /** Every event of a session (all `chat.history` pages), read through gateway `i`. */
  history(i: number, sessionKey: string): Promise<Array<{ seq: number; kind: string; data: any; runId?: string }>>;
  /** Stops every gateway still running, the emulator, the platform and NATS; removes state. */
  stop(): Promise<void>;
}

/** Session key of a webhook peer routed to the default agent (docs/channels.md). */
export function webhookSessionKey(peer: string, account = "default"): string {
  return `agent:main:webhook:${account}:${peer}`;
}

/**
 * Starts NATS (unless `nats: false`), the emulator, the fake platform and the gateways (in
 * sequence: each approves the webhook plugin with the CLI in its own state directory).
 * @throws Error when nats-server is missing (with the install command) or a gateway does not start
 */
export async function startBusGateways(options: BusGatewaysOptions = {}): Promise<BusGateways> {
  const useNats = options.nats ?? true;
  const natsStore = options.natsStore ?? useNats;
  const nats = useNats ? await NatsServer.start() : undefined;
  const emulator = await startEmulator(options.emulator);
  const platform = await startFakePlatform();
  const replyTimes = new WeakMap<PlatformRequest, number>();
  platform.respond((req) => {
    replyTimes.set(req, Date.now());
    return {};
  });
  const gateways: ChannelGateway[] = [];

  const configFor = (i: number): FileConfig => {
    const config: Record<string, unknown> = {
      channels: { webhook: { allow: options.allow ?? ["*"] } },
      // These tests post thousands of webhooks from one address (the fake platform is 127.0.0.1):
      // the per-address limits, meant for strangers, are off here (intake has its own tests).
      gateway: { webhooks: { per_address_rate: 0, per_address_in_flight: 100_000 } },
      plugins: {
        // Default: a generous call budget. The plugin's own default (1 s) includes its HTTP request
        // to the fake platform in the busy test process; under CI load a send that reached it timed
        // out and was sent again (a duplicate reply), and webhook parsing could answer 503.
        limits: { webhook: options.webhookLimits ?? { timeout_ms: 10_000 } },
        grants: {
          webhook: webhookGrant(`${platform.url}/gw${i}`),
        },
      },
      ...(nats ? { bus: { ...(options.natsUrlFrom === "env" ? {} : { url: nats.url }), ...options.bus } } : {}),
      ...(nats && natsStore ? { store: { url: nats.url } } : {}),
      ...options.config,
    };
    // `[bus]` is newer than this harness's typing of the file.
    return config as FileConfig;
  };

  const addGateway = async (): Promise<number> => {
    const i = gateways.length;
    const gw = await startChannelGateway({
      config: configFor(i),
      emulator,
      ...(options.args !== undefined ? { args: options.args } : {}),
      env: {
        TEST_WEBHOOK_SECRET: BUS_WEBHOOK_SECRET,
        EXOCLAW_LOG_LEVEL: "info",
        ...(nats && options.natsUrlFrom === "env" ? { EXOCLAW_NATS_URL: nats.url } : {}),
        ...options.env,
      },
    });
    gateways.push(gw);
    return i;
  };

  const stopAll = async () => {
    await Promise.all(gateways.map((g) => g.stop().catch(() => {})));
    await emulator.close().catch(() => {});
    await platform.close().catch(() => {});
    await nats?.destroy().catch(() => {});
  };

  try {
    for (let i = 0; i < (options.gateways ?? 1); i++) await addGateway();
  } catch (err) {
    await stopAll();
    throw err;
  }

  const alive = (i: number) => {
    const p = gateways[i]!.gateway.proc;
    return p.exitCode === null && p.signalCode === null;
  };

  return {
    nats,
    emulator,
    platform,
    gateways,
    replyTimes,
    alive,
    addGateway,
    post(i, message) {
      const text = JSON.stringify(message);
      return gateways[i]!.postWebhook("webhook", undefined, text, {
        "content-type": "application/json",
        "x-exoclaw-signature": `sha256=${hmacSha256Hex(BUS_WEBHOOK_SECRET, text)}`,
      });
    },
    async kill(i) {
      const proc = gateways[i]!.gateway.proc;
      if (!alive(i)) return;
      const exited = new Promise<void>((r) => proc.once("exit", () => r()));
      proc.kill("SIGKILL");
      await exited;
    },
    repliesByReplyTo() {
      const out = new Map<string, PlatformRequest[]>();
      for (const r of platform.requests) {
        const id = r.json?.replyTo;
        if (typeof id !== "string") continue;
        const list = out.get(id) ?? [];
        list.push(r);
        out.set(id, list);
      }
      return out;
    },
    senderOf(req) {
      const m = /^\/gw(\d+)/.exec(req.url);
      return m ? Number(m[1]) : -1;
    },
    async rpc(i, method, params) {
      const client = await RpcClient.connect(gateways[i]!.gateway.url);
      try {
        const { response } = await client.call(method, params);
        if (response.msg.error) throw new Error(`${method} on gateway ${i}: ${JSON.stringify(response.msg.error)}`);
        return response.msg.result;
      } finally {
        client.close();
      }
    },
    async history(i, sessionKey) {
      const client = await RpcClient.connect(gateways[i]!.gateway.url);
      try {
        const events: Array<{ seq: number; kind: string; data: any; runId?: string }> = [];
        let afterSeq = 0;
        for (;;) {
          const { response } = await client.call("chat.history", { sessionKey, afterSeq, limit: 1000 });
          if (response.msg.error) throw new Error(`chat.history ${sessionKey} on gateway ${i}: ${JSON.stringify(response.msg.error)}`);
          const page = response.msg.result as { events: typeof events; nextAfterSeq?: number };
          events.push(...page.events);
          if (page.nextAfterSeq === undefined) return events;
          afterSeq = page.nextAfterSeq;
        }
      } finally {
        client.close();
      }
    },
    stop: stopAll,
  };
}

/**
 * Posts `message` to the gateways starting at `first`, moving to the next live one when the
 * connection fails or the answer is 5xx — what a load balancer in front of several gateways
 * does. A retried message keeps its platform message id, so a copy the failed gateway may
 * already have published is dropped as a duplicate.
 * @returns the answer and the index of the gateway that gave it
 * @throws Error when no gateway answered within `timeoutMs`
 */
export async function postWithFailover(
  g: BusGateways,
  first: number,
  message: WebhookMessage,
  timeoutMs = 30_000,
): Promise<{ answer: WebhookAnswer; gateway: number; attempts: number; errors: string[] }> {
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastError = "";
  const errors: string[] = [];
  for (let k = 0; ; k++) {
    const i = (first + k) % g.gateways.length;
    if (g.alive(i)) {
      attempts++;
      try {
        const answer = await g.post(i, message);
        if (answer.status < 500) return { answer, gateway: i, attempts, errors };
        lastError = `gateway ${i}: HTTP ${answer.status} ${answer.text}`;
      } catch (err) {
        lastError = `gateway ${i}: ${String(err)}${(err as { cause?: unknown }).cause ? ` (${String((err as { cause?: unknown }).cause)})` : ""}`;
      }
      errors.push(lastError);
    }
    if (Date.now() > deadline) throw new Error(`no gateway accepted ${message.messageId} in ${timeoutMs} ms; last: ${lastError}`);
    if (k % g.gateways.length === g.gateways.length - 1) await new Promise((r) => setTimeout(r, 100));
  }
}

/** What {@link checkReplies} found. */
export interface ReplyCheck {
  /** Message ids with no reply. */
  missing: string[];
  /** Message ids answered more than once, with the count. */
  duplicated: Array<[string, number]>;
  /** Peers whose replies did not arrive in the order their messages were posted. */
  outOfOrder: Array<{ peer: string; got: number[] }>;
  /** Replies whose content is not the emulator's echo of the message. */
  wrongContent: Array<{ messageId: string; content: unknown }>;
  /** Replies per sending gateway index. */
  perGateway: Map<number, number>;
  /**
   * Message ids answered with the "turn interrupted" notice instead of the echo (a turn cut by a
   * killed process); only collected with `allowInterrupted`, else they count as wrong content.
   */
  interrupted: string[];
}

/** The reply a peer gets for a turn that was running in a process that died (channels/service.ts). */
export const INTERRUPTED_NOTICE = /^Sorry, your message could not be answered: turn interrupted/;

/**
 * Checks the platform's replies for `peers` × `perPeer` messages with ids `<peer>-<n>` and
 * content `<n>`: each answered exactly once with "You said: <n>" (or, with `allowInterrupted`,
 * the interrupted-turn notice), and each peer's replies in n order (by arrival; with
 * `allowRepeats` a reply right after an identical one is not an ordering fault — it is listed
 * in `duplicated` anyway).
 */
export function checkReplies(g: BusGateways, peers: string[], perPeer: number, opts: { allowInterrupted?: boolean; allowRepeats?: boolean } = {}): ReplyCheck {
  const byId = g.repliesByReplyTo();
  const result: ReplyCheck = { missing: [], duplicated: [], outOfOrder: [], wrongContent: [], perGateway: new Map(), interrupted: [] };
  for (const peer of peers) {
    for (let n = 0; n < perPeer; n++) {
      const id = messageId(peer, n);
      const list = byId.get(id) ?? [];
      if (list.length === 0) result.missing.push(id);
      if (list.length > 1) result.duplicated.push([id, list.length]);
      for (const r of list) {
        const content = r.json?.content;
        if (content === `You said: ${n}`) continue;
        if (opts.allowInterrupted && typeof content === "string" && INTERRUPTED_NOTICE.test(content)) result.interrupted.push(id);
        else result.wrongContent.push({ messageId: id, content });
      }
    }
  }
  const seen = new Map<string, number[]>();
  for (const r of g.platform.requests) {
    const peer = r.json?.peer;
    const m = typeof r.json?.replyTo === "string" ? /-(\d+)$/.exec(r.json.replyTo) : null;
    if (typeof peer !== "string" || !m) continue;
    const list = seen.get(peer) ?? [];
    list.push(Number(m[1]));
    seen.set(peer, list);
    const s = g.senderOf(r);
    result.perGateway.set(s, (result.perGateway.get(s) ?? 0) + 1);
  }
  for (const peer of peers) {
    const got = seen.get(peer) ?? [];
    const bad = (v: number, k: number) => k > 0 && (opts.allowRepeats ? v < got[k - 1]! : v <= got[k - 1]!);
    if (got.some(bad)) result.outOfOrder.push({ peer, got });
  }
  return result;
}

/** What {@link checkHistories} found. */
export interface HistoryCheck {
  /** One line per session whose history is wrong. */
  problems: string[];
  /**
   * Messages journaled twice in a row (only with `allowReruns`): the turn of a message was left
   * unfinished by a killed process and run again by the one that took its session over.
   */
  reruns: string[];
  /** For each re-run: the event kinds journaled between the two `message_received` of the message. */
  rerunDetails: string[];
}

/**
 * Reads each peer's session history through gateway `via` and reports a session whose
 * `message_received` contents are not exactly 0..perPeer-1 in seq order, or whose assistant
 * texts are not "You said: 0".."You said: perPeer-1" in seq order — leaving out the messages in
 * `interrupted` (ids `<peer>-<n>`), whose turns may have ended in an error event. With
 * `allowReruns`, a message (and its answer) repeated right after itself counts as one and is
 * listed in `reruns`; anything else out of place is still a problem.
 */
export async function checkHistories(
  g: BusGateways,
  via: number,
  peers: string[],
  perPeer: number,
  opts: { interrupted?: string[]; allowReruns?: boolean } = {},
): Promise<HistoryCheck> {
  const cut = new Set(opts.interrupted ?? []);
  const result: HistoryCheck = { problems: [], reruns: [], rerunDetails: [] };
  const expected = Array.from({ length: perPeer }, (_, n) => String(n));
  const collapse = (list: string[], onRepeat?: (v: string) => void) =>
    opts.allowReruns ? list.filter((v, j) => (j > 0 && list[j - 1] === v ? (onRepeat?.(v), false) : true)) : list;
  // A few sessions at a time: each read is a WebSocket and a walk of the session's log.
  for (let k = 0; k < peers.length; k += 10) {
    await Promise.all(
      peers.slice(k, k + 10).map(async (peer) => {
        const events = await g.history(via, webhookSessionKey(peer));
        const received = collapse(
          events.filter((e) => e.kind === "message_received").map((e) => String(e.data.content)),
          (n) => result.reruns.push(messageId(peer, Number(n))),
        );
        const answers = collapse(events.filter((e) => e.kind === "assistant_text").map((e) => String(e.data.text)));
        if (opts.allowReruns) {
          const recv = events.map((e, j) => [e, j] as const).filter(([e]) => e.kind === "message_received");
          for (let r = 1; r < recv.length; r++) {
            const [prev, pj] = recv[r - 1]!;
            const [cur, cj] = recv[r]!;
            if (String(prev.data.content) !== String(cur.data.content)) continue;
            result.rerunDetails.push(
              `${peer} message ${cur.data.content}: ${events
                .slice(pj, cj + 1)
                .map((e) => e.kind)
                .join(", ")}`,
            );
          }
        }
        if (JSON.stringify(received) !== JSON.stringify(expected)) result.problems.push(`${peer}: message_received ${JSON.stringify(received)}`);
        const answered = expected.filter((n) => !cut.has(messageId(peer, Number(n))));
        if (JSON.stringify(answers) !== JSON.stringify(answered.map((n) => `You said: ${n}`)))
          result.problems.push(`${peer}: assistant_text ${JSON.stringify(answers)}`);
        const seqs = events.map((e) => e.seq);
        if (seqs.some((s, j) => j > 0 && s <= seqs[j - 1]!)) result.problems.push(`${peer}: seqs not increasing`);
      }),
    );
  }
  return result;
}

/** The platform message id the tests give message `n` of `peer`. */
export function messageId(peer: string, n: number): string {
  return `${peer}-${n}`;
}

/**
 * Waits until every one of `ids` has at least one reply on the platform (checked every 200 ms).
 * @throws Error after `timeoutMs`, naming how many and which (first 10) are missing
 */
export async function waitForReplies(g: BusGateways, ids: string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const byId = g.repliesByReplyTo();
    const missing = ids.filter((id) => !byId.has(id));
    if (missing.length === 0) return;
    if (Date.now() > deadline)
      throw new Error(`after ${timeoutMs} ms, ${missing.length} of ${ids.length} messages have no reply: ${missing.slice(0, 10).join(", ")}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** What {@link postAll} did. */
export interface PostReport {
  /** HTTP status of each message's accepted answer, by message id. */
  statuses: Map<string, number>;
  /** Posts that had to go to another gateway (connection failed or 5xx). */
  failovers: number;
  /** Why posts failed over (the first 20 reasons). */
  failoverErrors: string[];
  /** Wall time from the first post to the last answer, ms. */
  ms: number;
}

/**
 * Posts `perPeer` messages (content `<n>`, id `<peer>-<n>`) for each peer: one chain per peer,
 * each message posted after the previous one's answer (so the platform's order is defined), all
 * peers concurrently. Message number `k = n * peers.length + p` goes first to gateway
 * `k mod gateways` (round robin; with an even number of peers and 2 gateways that pins each peer
 * to one gateway: `opts.first(p, n)` picks another first gateway), then fails over (see
 * {@link postWithFailover}).
 * @param afterEach called after each accepted answer with the count so far
 * @param opts.ratePerSec spread the posts over time: post number `i` (over all peers) starts no
 *   earlier than `i / ratePerSec` seconds after the first
 */
export async function postAll(
  g: BusGateways,
  peers: string[],
  perPeer: number,
  afterEach?: (posted: number) => void | Promise<void>,
  opts: { ratePerSec?: number; first?: (peerIndex: number, n: number) => number } = {},
): Promise<PostReport> {
  const statuses = new Map<string, number>();
  let failovers = 0;
  const failoverErrors: string[] = [];
  let posted = 0;
  let started = 0;
  const t0 = Date.now();
  await Promise.all(
    peers.map(async (peer, p) => {
      for (let n = 0; n < perPeer; n++) {
        if (opts.ratePerSec !== undefined) {
          const at = t0 + (started++ * 1000) / opts.ratePerSec;
          if (at > Date.now()) await new Promise((r) => setTimeout(r, at - Date.now()));
        }
        const k = n * peers.length + p;
        const first = opts.first ? opts.first(p, n) % g.gateways.length : k % g.gateways.length;
        const r = await postWithFailover(g, first, { peer, content: String(n), messageId: messageId(peer, n) });
        if (r.attempts > 1 || r.gateway !== first) failovers++;
        for (const e of r.errors) if (failoverErrors.length < 20) failoverErrors.push(`${messageId(peer, n)}: ${e}`);
        statuses.set(messageId(peer, n), r.answer.status);
        posted++;
        await afterEach?.(posted);
      }
    }),
  );
  return { statuses, failovers, failoverErrors, ms: Date.now() - t0 };
}

/**
 * Partitions of the inbound consumer that gateway `i` holds leases on, from `status.bus.partitions`
 * (keys name the durable consumer; outbound consumers, `out-<channel>`, are left out).
 */
export async function heldPartitions(g: BusGateways, i: number): Promise<number[]> {
  const bus = (await g.rpc(i, "status")).bus as { partitions?: Record<string, number[]> } | null | undefined;
  return Object.entries(bus?.partitions ?? {})
    .filter(([consumer]) => !/(^|[^a-z])out-/.test(consumer))
    .flatMap(([, ps]) => ps);
}

/**
 * Waits until the live gateways `among` together hold each of the `total` inbound partitions
 * exactly once, each holding at least one: the work is spread before the load starts.
 * @throws Error after `timeoutMs` with the last assignment seen
 */
export async function waitForPartitionsSpread(g: BusGateways, among: number[], total: number, timeoutMs = 30_000): Promise<number[][]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const held = await Promise.all(among.map((i) => heldPartitions(g, i)));
    const all = held.flat();
    if (all.length === total && new Set(all).size === total && held.every((h) => h.length > 0)) return held;
    if (Date.now() > deadline) throw new Error(`inbound partitions not spread over gateways ${among.join(",")} in ${timeoutMs} ms: ${JSON.stringify(held)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
