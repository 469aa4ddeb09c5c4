// The generic request/answer relay (bus/nats/request-relay.ts) on a real nats-server, three bus
// connections standing for three gateways: an asker collects the others' answers (sync and async)
// and never its own; `each` returning true stops collecting; a request failing the check, or an
// answer that throws, is reported and not answered; a lone gateway (no responders) warns nothing.
import { afterAll, describe, expect, it } from "vitest";
import { connect } from "@nats-io/transport-node";
import { encodePayload } from "../../host/src/bus/codec.js";
import { RequestRelay, type Relayed } from "../../host/src/bus/nats/index.js";
import { natsBuses } from "../support/nats-buses.js";

const nats = natsBuses("exoclaw-reqrelay-");
const relays: RequestRelay<Ping>[] = [];
afterAll(() => relays.forEach((r) => r.close()));

interface Ping {
  n: number;
}

function check(v: unknown): Relayed<Ping> | string {
  const r = v as Record<string, unknown>;
  if (typeof r !== "object" || r === null || r.v !== 1) return "not a v1 map";
  if (typeof r.from !== "string") return "from must be a string";
  if (typeof r.n !== "number") return "n must be a number";
  return { from: r.from, n: r.n };
}

let subjectN = 0;

/** Three gateways on one fresh subject; `answer(id)` makes each one's answer. */
async function gateways(answer: (id: string, req: Relayed<Ping>) => Record<string, unknown> | Promise<Record<string, unknown>>) {
  const subject = `test.relay.${++subjectN}`;
  const out: { relay: RequestRelay<Ping>; warnings: string[]; seen: Relayed<Ping>[] }[] = [];
  for (const id of ["a", "b", "c"]) {
    const bus = await nats.bus(`${id}${subjectN}`);
    const warnings: string[] = [];
    const seen: Relayed<Ping>[] = [];
    const relay = new RequestRelay<Ping>({
      bus,
      subject,
      what: "ping",
      check,
      answer: (req) => {
        seen.push(req);
        return answer(id, req);
      },
      maxWaitMs: 5_000,
      stallMs: 1_000,
      onWarning: (m) => warnings.push(m),
    });
    relays.push(relay);
    // The subscription is on the server once the connection's pending SUB is flushed.
    await bus.nc!.flush();
    out.push({ relay, warnings, seen });
  }
  return { subject, gws: out };
}

describe("RequestRelay", () => {
  it("collects the other gateways' answers, sync and async, never its own", async () => {
    const { gws } = await gateways((id, req) => (id === "c" ? Promise.resolve({ who: id, n: req.n + 1 }) : { who: id, n: req.n + 1 }));
    const answers: Record<string, unknown>[] = [];
    await gws[0]!.relay.ask({ n: 41 }, (a) => {
      answers.push(a);
      return false;
    });
    expect(answers.map((a) => a.who).sort()).toEqual(["b", "c"]);
    for (const a of answers) expect(a).toMatchObject({ v: 1, n: 42 });
    expect(answers.map((a) => a.from).sort()).toEqual([`b${subjectN}`, `c${subjectN}`]);
    expect(gws[0]!.seen).toEqual([]);
    expect(gws[1]!.seen).toEqual([{ from: `a${subjectN}`, n: 41 }]);
    expect(gws.flatMap((g) => g.warnings)).toEqual([]);
  });

  it("stops collecting when `each` returns true", async () => {
    const { gws } = await gateways((id) => ({ who: id }));
    let calls = 0;
    await gws[0]!.relay.ask({ n: 1 }, () => {
      calls++;
      return true;
    });
    expect(calls).toBe(1);
  });

  it("reports a malformed request and an answer that throws, answering neither", async () => {
    const { subject, gws } = await gateways((id) => {
      if (id === "b") throw new Error("boom");
      return Promise.reject(new Error("async boom"));
    });
    const answers: unknown[] = [];
    await gws[0]!.relay.ask({ n: 1 }, (a) => {
      answers.push(a);
      return false;
    });
    expect(answers).toEqual([]);
    expect(gws[1]!.warnings).toEqual(["cannot answer a ping of another gateway"]);
    expect(gws[2]!.warnings).toEqual(["cannot answer a ping of another gateway"]);

    const nc = await connect({ servers: nats.server.url });
    try {
      nc.publish(subject, encodePayload({ v: 1, from: "x", n: "not a number" }));
      await nc.flush();
      await expect.poll(() => gws[1]!.warnings.length, { timeout: 10_000 }).toBe(2);
      expect(gws[1]!.warnings[1]).toBe(`malformed ping on ${subject}: n must be a number`);
    } finally {
      await nc.close();
    }
  });

  it("a lone gateway's request ends with no answer and no warning", async () => {
    const bus = await nats.bus("lone");
    const warnings: string[] = [];
    const relay = new RequestRelay<Ping>({
      bus,
      subject: "test.relay.lone",
      what: "ping",
      check,
      answer: () => ({}),
      maxWaitMs: 1_000,
      onWarning: (m) => warnings.push(m),
    });
    relays.push(relay);
    let calls = 0;
    await relay.ask({ n: 1 }, () => (calls++, false));
    expect(calls).toBe(0);
    expect(warnings).toEqual([]);
  });
});
