// The reply outbox end to end (docs/reliability.md, "A crash between answer and reply"): the real
// gateway process on its embedded store, the real `webhook` channel plugin (Wasm), the provider
// emulator, and a fake platform that fails the reply's POST or is unreachable while the gateway
// is killed with SIGKILL. A journaled turn's reply goes out after retries and after a restart,
// always with the same Idempotency-Key; a reply the platform refuses (400) is dead-lettered.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type GatewayHandle } from "../support/gateway.js";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  waitUntil,
  type ChannelGateway,
  type FakePlatform,
  type PlatformRequest,
  webhookGrant,
} from "../support/channel-gateway.js";

const SECRET = "test-webhook-secret-0123456789";
const ENV = { TEST_WEBHOOK_SECRET: SECRET };

describe("reply outbox (webhook plugin, real gateway)", () => {
  let platform: FakePlatform;
  let gw: ChannelGateway;
  /** The gateway now serving (a restarted one after a kill). */
  let current: GatewayHandle;
  /** Per peer: how the platform answers a reply's POST. */
  const answers = new Map<string, (req: PlatformRequest) => number>();

  beforeAll(async () => {
    platform = await startFakePlatform((req) => ({ status: answers.get(req.json?.peer)?.(req) ?? 200 }));
    gw = await startChannelGateway({
      config: {
        channels: { webhook: { allow: ["alice", "carol", "dave"] } },
        plugins: {
          grants: {
            webhook: webhookGrant(`${platform.url}/inbox`),
          },
        },
      },
      env: ENV,
    });
    current = gw.gateway;
  });
  afterAll(async () => {
    if (current !== gw?.gateway && current.proc.exitCode === null && current.proc.signalCode === null) await current.stop();
    await gw?.stop();
    await platform?.close();
  });

  const post = async (peer: string, content: string, messageId: string) => {
    const text = JSON.stringify({ peer, content, messageId });
    const res = await fetch(`${current.url.replace(/^ws/, "http").replace(/\/ws$/, "")}/webhook/webhook`, {
      method: "POST",
      headers: { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` },
      body: text,
    });
    return res.status;
  };
  const repliesTo = (messageId: string) => platform.requests.filter((r) => r.json?.replyTo === messageId);
  const modelCalls = (mark: string) => gw.emulator.requests.filter((r) => JSON.stringify(r.body).includes(mark)).length;

  it("retries a reply the platform answers 500 until it goes out, with one Idempotency-Key", async () => {
    let calls = 0;
    answers.set("alice", () => (++calls <= 3 ? 500 : 200));
    expect(await post("alice", "RETRY_MARK hello", "r1")).toBe(200);
    await waitUntil(() => repliesTo("r1").length >= 4, 20_000, "four POSTs of the reply");
    const sent = repliesTo("r1");
    // Before the outbox, a reply was given up after 3 retries (4 attempts) — here it takes 4 and
    // goes out; every attempt carries the same key.
    expect(sent.map((r) => r.headers["idempotency-key"])).toEqual(Array(4).fill("channel:webhook:default:r1:reply"));
    expect(sent[3]!.json).toMatchObject({ peer: "alice", content: "You said: RETRY_MARK hello", replyTo: "r1" });
    expect(modelCalls("RETRY_MARK")).toBe(1);
  });

  it("sends a finished turn's reply after kill -9 and a restart, with the same Idempotency-Key", async () => {
    // The platform is down: the turn ends, its reply is retried, then the gateway is killed.
    let up = false;
    answers.set("carol", () => (up ? 200 : 503));
    expect(await post("carol", "CRASH_MARK please answer", "k1")).toBe(200);
    await waitUntil(() => repliesTo("k1").length >= 2, 20_000, "reply attempts before the kill");
    current.proc.kill("SIGKILL");
    await new Promise((r) => current.proc.once("exit", r));
    const before = repliesTo("k1").length;
    up = true;
    current = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
      "--config",
      gw.configFile,
    ]);
    const delivered = await platform.waitFor((r) => r.json?.replyTo === "k1" && repliesTo("k1").indexOf(r) >= before, 20_000);
    expect(delivered.json).toMatchObject({ peer: "carol", content: "You said: CRASH_MARK please answer" });
    expect(new Set(repliesTo("k1").map((r) => r.headers["idempotency-key"]))).toEqual(new Set(["channel:webhook:default:k1:reply"]));
    expect(current.logs.some((l) => l.msg === "replies owed by the previous gateway process are sent again")).toBe(true);
    expect(modelCalls("CRASH_MARK")).toBe(1); // the turn was not run again
    // Settled: a second restart sends nothing more for it.
    await waitUntil(() => current.logs.some((l) => l.msg === "channel message sent" && l.replyId === "channel:webhook:default:k1:reply"), 10_000, "sent log");
    expect(await current.stop()).toBe(0);
    const after = repliesTo("k1").length;
    current = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
      "--config",
      gw.configFile,
    ]);
    await new Promise((r) => setTimeout(r, 500));
    expect(repliesTo("k1").length).toBe(after);
  });

  it("dead-letters a reply the platform refuses with 400: one attempt, logged, counted", async () => {
    answers.set("dave", () => 400);
    expect(await post("dave", "REFUSED_MARK", "d1")).toBe(200);
    const line = await waitUntil(
      () => current.logs.find((l) => l.msg === "channel send failed permanently; reply dead-lettered (not retried)"),
      20_000,
      "dead letter",
    );
    expect(line).toMatchObject({ channel: "webhook", peer: "dave", replyId: "channel:webhook:default:d1:reply", attempts: 1 });
    await new Promise((r) => setTimeout(r, 600));
    expect(repliesTo("d1")).toHaveLength(1);
  });
});
