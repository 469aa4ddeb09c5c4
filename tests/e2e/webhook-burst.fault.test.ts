// Fault injection (issue 21, finding 4): no bus, the real gateway on its embedded store, the real
// `webhook` plugin, a platform that takes 200 ms per reply, and kill -9 three times during a
// 400-message burst (restarted each time; the senders redeliver what was not answered 200, like a
// platform). At the end every message has a reply (or failure notice) at the platform, each
// under its own Idempotency-Key; a key may arrive more than once only through the documented
// at-least-once window (a kill between the platform's answer and the outbox settle), and the
// platform, deduping by key, sees exactly one per message.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startGateway, type GatewayHandle } from "../support/gateway.js";
import {
  hmacSha256Hex,
  startChannelGateway,
  startFakePlatform,
  waitUntil,
  type ChannelGateway,
  type FakePlatform,
  webhookGrant,
} from "../support/channel-gateway.js";

const SECRET = "test-webhook-secret-0123456789";
const ENV = { TEST_WEBHOOK_SECRET: SECRET };
const MESSAGES = 400;
const PEERS = 40;
const KILLS_AT = [100, 200, 300];

describe("webhook burst with kill -9 (no bus)", () => {
  let platform: FakePlatform;
  let gw: ChannelGateway;
  let current: GatewayHandle;

  beforeAll(async () => {
    platform = await startFakePlatform(async () => {
      await new Promise((r) => setTimeout(r, 200));
      return { status: 200 };
    });
    gw = await startChannelGateway({
      config: {
        channels: { webhook: { allow: ["*"] } },
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

  it("answers every message once per Idempotency-Key across three kills", async () => {
    let restarting: Promise<void> | undefined;
    let accepted = 0;
    const kills: number[] = [];
    const post = async (i: number): Promise<void> => {
      const text = JSON.stringify({ peer: `p${i % PEERS}`, content: `burst ${i}`, messageId: `m${i}` });
      for (;;) {
        await restarting;
        const base = current.url.replace(/^ws/, "http").replace(/\/ws$/, "");
        try {
          const res = await fetch(`${base}/webhook/webhook`, {
            method: "POST",
            headers: { "content-type": "application/json", "x-exoclaw-signature": `sha256=${hmacSha256Hex(SECRET, text)}` },
            body: text,
          });
          await res.text();
          if (res.status === 200) break;
        } catch {
          // The gateway was killed: redeliver, like a platform.
        }
        await new Promise((r) => setTimeout(r, 50));
      }
      accepted++;
      if (kills.length < KILLS_AT.length && accepted >= KILLS_AT[kills.length]! && restarting === undefined) {
        kills.push(accepted);
        restarting = (async () => {
          const victim = current;
          victim.proc.kill("SIGKILL");
          await new Promise((r) => (victim.proc.exitCode !== null || victim.proc.signalCode !== null ? r(undefined) : victim.proc.once("exit", r)));
          current = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: gw.emulator.url, ...ENV, EXOCLAW_STATE_DIR: gw.stateDir }, [
            "--config",
            gw.configFile,
          ]);
        })().finally(() => (restarting = undefined));
      }
    };
    // 16 senders at a time, like a platform's delivery workers.
    let next = 0;
    await Promise.all(
      Array.from({ length: 16 }, async () => {
        while (next < MESSAGES) await post(next++);
      }),
    );
    await restarting;
    expect(kills).toHaveLength(3);
    const keyOf = (i: number) => `channel:webhook:default:m${i}:reply`;
    const byKey = () => {
      const m = new Map<string, number>();
      for (const r of platform.requests) {
        const k = String(r.headers["idempotency-key"]);
        m.set(k, (m.get(k) ?? 0) + 1);
      }
      return m;
    };
    // Counted (and printed) also when some never come, so a failing run reports its figures.
    await waitUntil(() => Array.from({ length: MESSAGES }, (_, i) => i).every((i) => byKey().has(keyOf(i))), 60_000, "a reply to every message").catch(
      () => {},
    );
    // Let late resends land before counting.
    await new Promise((r) => setTimeout(r, 1000));
    const counts = byKey();
    const unanswered = Array.from({ length: MESSAGES }, (_, i) => i).filter((i) => !counts.has(keyOf(i)));
    const duplicates = [...counts.values()].filter((n) => n > 1).length;
    const notices = platform.requests.filter((r) => String(r.json?.content).startsWith("Sorry")).length;
    // Whatever the keys: messages no POST answered at all.
    const answeredIds = new Set(platform.requests.map((r) => r.json?.replyTo));
    const silent = Array.from({ length: MESSAGES }, (_, i) => i).filter((i) => !answeredIds.has(`m${i}`)).length;
    console.log(
      `webhook burst: ${MESSAGES} messages, kills after ${kills.join(", ")} accepted; ${platform.requests.length} reply POSTs, ${counts.size} distinct keys, ` +
        `${duplicates} keys sent more than once, ${notices} failure notices, ${unanswered.length} without a keyed reply, ${silent} with no reply at all`,
    );
    expect(unanswered).toEqual([]);
    // Exactly one reply per message when deduped by key, and no key the gateway did not owe.
    expect(counts.size).toBe(MESSAGES);
    // Each message's reply answers it (or is its failure notice), under its own key.
    for (const r of platform.requests) {
      const i = Number(String(r.json?.replyTo).slice(1));
      expect(r.headers["idempotency-key"]).toBe(keyOf(i));
      expect([`You said: burst ${i}`].includes(r.json.content) || String(r.json.content).startsWith("Sorry, your message could not be answered")).toBe(true);
    }
    // Resends by key come only from kills (at most the replies in flight at each kill).
    expect(platform.requests.length - counts.size).toBeLessThanOrEqual(kills.length * 64);
  }, 240_000);
});
