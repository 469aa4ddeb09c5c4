// A budget shared by 3 gateway processes on one real nats-server (the NATS KV budget ledger):
// clients spread their turns round robin over the gateways (51 at once, then waves of 12), each gateway runs its clients' turns
// itself, and the agent's daily token budget holds for the cluster — the spend recorded by all
// three stops at the cap (no turn passes it: each model call reserves its worst case in KV
// first), and every gateway refuses with -32011 once it is used up; a webhook peer then gets the
// failure notice. `usage.summary` on any
// gateway (one shared session store) counts exactly what the clients saw.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startBusGateways, type BusGateways } from "../support/bus-gateways.js";
import { RpcClient } from "../support/gateway.js";

/** The cluster's daily token budget of the agent. One call reserves ~130 tokens (estimate + max_tokens 50) and spends ~50. */
const CAP_TOKENS = 1500;

let g: BusGateways;

beforeAll(async () => {
  g = await startBusGateways({
    gateways: 3,
    config: {
      agents: [{ id: "main", provider: "anthropic", model: "claude-sonnet-4-6", max_tokens: 50, tools: [], budget: { day_tokens: CAP_TOKENS } }],
    },
  });
}, 180_000);

afterAll(async () => {
  await g?.stop();
});

type Outcome = { gateway: number; ok: true; tokens: number } | { gateway: number; ok: false; code: number; message: string };

describe("a budget across 3 gateways on one bus", () => {
  it("the cluster's spend stops at the cap, and each gateway refuses with -32011 once it is used up", async () => {
    const clients = await Promise.all(g.gateways.map((gw) => RpcClient.connect(gw.gateway.url)));
    const turn = async (k: number, peer: string): Promise<Outcome> => {
      const i = k % 3;
      const { response, events } = await clients[i]!.call("chat.send", { content: `spend ${k} hello`, peer });
      if (response.msg.error) return { gateway: i, ok: false, code: response.msg.error.code, message: response.msg.error.message };
      const usage = events.filter((e) => e.msg.params.type === "usage").map((e) => e.msg.params.data);
      return { gateway: i, ok: true, tokens: usage.reduce((a, u) => a + u.inputTokens + u.outputTokens, 0) };
    };
    // 51 turns at once (17 per gateway) racing the budget, then waves of 12 (4 per gateway), round
    // robin, until a whole wave is refused: then what is left is less than one reservation.
    const outcomes: Outcome[] = [];
    let k = 0;
    for (let wave = 0; wave < 12; wave++) {
      const size = wave === 0 ? 51 : 12;
      const start = k;
      k += size;
      const got = await Promise.all(Array.from({ length: size }, (_, j) => turn(start + j, `p-${wave}-${j}`)));
      outcomes.push(...got);
      if (wave > 0 && got.every((o) => !o.ok)) break;
    }
    const ok = outcomes.filter((o): o is Extract<Outcome, { ok: true }> => o.ok);
    const refused = outcomes.filter((o): o is Extract<Outcome, { ok: false }> => !o.ok);
    // Admitted turns on every gateway, refusals on every gateway.
    expect(new Set(ok.map((o) => o.gateway))).toEqual(new Set([0, 1, 2]));
    expect(new Set(refused.map((o) => o.gateway))).toEqual(new Set([0, 1, 2]));
    for (const r of refused) {
      expect(r).toMatchObject({
        code: -32011,
        message: "budget exceeded: the daily token budget of this agent is used up (it resets at the next midnight, UTC)",
      });
    }
    const spent = ok.reduce((a, o) => a + o.tokens, 0);
    // Never past the cap; and it stopped near it: the last wave was refused everywhere, so what
    // is left is less than one call's reservation.
    expect(spent).toBeLessThanOrEqual(CAP_TOKENS);
    expect(spent).toBeGreaterThan(CAP_TOKENS - 200);
    // One session store: any gateway's usage.summary counts every gateway's calls.
    for (const i of [0, 2]) {
      const summary = await g.rpc(i, "usage.summary", { by: "agent" });
      const main = summary.groups.find((x: { key: string }) => x.key === "main");
      expect(main.calls).toBe(ok.length);
      expect(main.inputTokens + main.outputTokens).toBe(spent);
    }
    // A channel peer's message, consumed by whichever gateway owns its partition, is refused
    // there too, and the peer gets the notice (without amounts).
    expect((await g.post(1, { peer: "late", content: "hello", messageId: "late-1" })).status).toBe(200);
    const notice = await g.platform.waitFor((r) => r.json?.replyTo === "late-1", 60_000);
    expect(notice.json.content).toBe(
      "Sorry, your message could not be answered: budget exceeded: the daily token budget of this agent is used up (it resets at the next midnight, UTC)",
    );
    for (const c of clients) c.close();
  }, 300_000);
});
