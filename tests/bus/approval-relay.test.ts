// The approval relay (bus/nats/approval-relay.ts + gateway/remote-approvals.ts) on a real
// nats-server, with three bus connections standing for three gateways, each with its own
// ApprovalBook: an approval parked at A is answered from B (admin) or C (its approver's
// address); a wrong peer is forbidden where it is parked; two gateways answering at once resolve
// it exactly once; a forged or malformed request on the subject decides nothing; listing
// collects every gateway's parked calls.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApprovalBook, type PendingApproval } from "../../host/src/agent/index.js";
import { encodePayload } from "../../host/src/bus/codec.js";
import { APPROVAL_SUBJECT, createNatsBus, type NatsBus } from "../../host/src/bus/nats/index.js";
import { startRemoteApprovals } from "../../host/src/gateway/remote-approvals.js";
import type { NewSessionEvent } from "../../host/src/store/index.js";
import { recordingLogger } from "../agent/support.js";
import { NatsServer, TEST_TIMINGS } from "./nats-server.js";

let server: NatsServer;
const buses: NatsBus[] = [];
const closers: (() => void)[] = [];
const dirs: string[] = [];

interface Gw {
  book: ApprovalBook;
  appended: { sessionKey: string; events: NewSessionEvent[] }[];
  logger: ReturnType<typeof recordingLogger>;
}

async function gateway(id: string): Promise<Gw> {
  const dir = await mkdtemp(join(tmpdir(), "exoclaw-relay-"));
  dirs.push(dir);
  const bus = await createNatsBus({ servers: server.url, stateDir: dir, instanceId: id, ...TEST_TIMINGS, connectWaitMs: 10_000 });
  buses.push(bus);
  const appended: Gw["appended"] = [];
  const logger = recordingLogger();
  const book = new ApprovalBook({ append: async (sessionKey, events) => appended.push({ sessionKey, events }), notify: () => {}, logger });
  const close = await startRemoteApprovals({ bus, book, logger });
  closers.push(close!);
  return { book, appended, logger };
}

beforeAll(async () => {
  server = await NatsServer.start();
}, 30_000);

afterAll(async () => {
  for (const c of closers) c();
  await Promise.all(buses.map((b) => b.close().catch(() => {})));
  await server?.destroy();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

let n = 0;
function park(gw: Gw, approver?: string) {
  const id = gw.book.newId();
  const approval: PendingApproval = {
    id,
    sessionKey: `agent:main:ws:admin:s${++n}`,
    runId: `run-${n}`,
    agentId: "main",
    toolUseId: `tu-${n}`,
    tool: "echo",
    input: { text: "x" },
    ...(approver !== undefined ? { approver } : {}),
    expiresAt: Date.now() + 600_000,
  };
  const decision = gw.book.wait(approval, new AbortController().signal);
  return { id, decision };
}

describe("approvals relayed between gateways", () => {
  it("admin answer from B and the approver's from C reach the call parked at A; a wrong peer is forbidden", async () => {
    const [a, b, c] = [await gateway("a"), await gateway("b"), await gateway("c")];
    const first = park(a);
    expect(b.book.mayAnswer).toBe(true);
    expect(await b.book.decide(first.id, true, { kind: "admin", client: "ops" })).toBe("decided");
    expect(await first.decision).toEqual({ approved: true, by: "rpc:ops" });
    expect(a.appended.map((x) => x.events[0]!.data)).toEqual([{ id: first.id, approved: true, by: "rpc:ops" }]);
    expect(b.appended).toEqual([]); // written where it is parked

    const second = park(a, "telegram:default:1001");
    expect(await c.book.decide(second.id, true, { kind: "peer", address: "telegram:default:6666" })).toBe("forbidden");
    expect(await c.book.decide(second.id, false, { kind: "peer", address: "telegram:default:1001" })).toBe("decided");
    expect(await second.decision).toEqual({ approved: false, by: "telegram:default:1001" });
    // Answered: nobody finds it any more.
    expect(await b.book.decide(second.id, true, { kind: "admin", client: "ops" })).toBe("unknown");
    expect(await a.book.decide(second.id, true, { kind: "admin", client: "ops" })).toBe("unknown");
  }, 60_000);

  it("B and C answering at once: decided exactly once", async () => {
    const [a, b, c] = [await gateway("a2"), await gateway("b2"), await gateway("c2")];
    const parked = park(a);
    const outcomes = await Promise.all([
      b.book.decide(parked.id, true, { kind: "admin", client: "b" }),
      c.book.decide(parked.id, false, { kind: "admin", client: "c" }),
      b.book.decide(parked.id, true, { kind: "admin", client: "b" }),
    ]);
    expect(outcomes.filter((o) => o === "decided")).toHaveLength(1);
    const d = await parked.decision;
    expect(a.appended.filter((x) => x.events[0]!.kind === "approval_resolved")).toHaveLength(1);
    expect(a.appended[0]!.events[0]!.data).toEqual({ id: parked.id, approved: d.approved, by: d.by });
  }, 60_000);

  it("a malformed request on the subject decides nothing; list collects every gateway's", async () => {
    const [a, b] = [await gateway("a3"), await gateway("b3")];
    const parked = park(a, "telegram:default:1001");
    const other = park(b);
    const nc = buses.at(-1)!.nc!;
    // No `who`: refused by the relay (warned), not decided.
    nc.publish(APPROVAL_SUBJECT, encodePayload({ v: 1, from: "intruder", op: "decide", id: parked.id, approved: true }));
    await nc.flush();
    await new Promise((r) => setTimeout(r, 200));
    expect(a.book.waiting).toBe(1);
    expect(a.logger.lines.some((l) => /malformed approval request/.test(l.msg))).toBe(true);
    const listed = (await b.book.listEverywhere()).map((x) => x.id).sort();
    expect(listed).toEqual(expect.arrayContaining([parked.id, other.id]));
    await b.book.decide(parked.id, true, { kind: "admin", client: "ops" });
    await a.book.decide(other.id, true, { kind: "admin", client: "ops" });
    await Promise.all([parked.decision, other.decision]);
  }, 60_000);
});
