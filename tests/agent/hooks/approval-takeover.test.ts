/**
 * Taking over a turn parked on an approval (agent/approvals/takeover.ts; docs/bus.md, "A parked
 * turn whose gateway dies"), on two real runtimes sharing one session log (what two gateways on a
 * shared store are), with the real echo plugin and the provider emulator: while the first
 * runtime's book still lists the approval (a live gateway, here its book standing in for the
 * NATS relay, which tests/bus/approval-relay.test.ts covers), the second leaves the turn to it;
 * once the first is gone, the second resumes the same run on the same approval id, the
 * approver's answer there completes it once, and a later takeover finds nothing to resume.
 * The process-level version (two gateways, kill -9) is tests/bus/approval-takeover.test.ts.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AgentRuntime } from "../../../host/src/agent/runtime.js";
import type { PluginHost } from "../../../host/src/plugins/index.js";
import { createMemorySessionLog, type SessionLog } from "../../../host/src/store/index.js";
import { startEmulator, type Emulator } from "../../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, recordingLogger, recordingSender, send, until } from "../support.js";
import { fixtureHost, HOOK_GRANTS } from "./support.js";

let emulator: Emulator;
let host: PluginHost;
let closeHost: () => Promise<void>;
beforeAll(async () => {
  emulator = await startEmulator();
  ({ host, close: closeHost } = await fixtureHost({ echo: HOOK_GRANTS.echo! }));
}, 180_000);
afterAll(async () => {
  await closeHost?.();
  await emulator?.close();
});
beforeEach(() => emulator.reset());

const APPROVER = "telegram:default:1001";

function setup(log: SessionLog) {
  const sender = recordingSender();
  const agent = agentConfig({ approvals: { rules: [{ tool: "echo" }], approver: APPROVER, timeoutMs: 60_000 } });
  return { ...makeRuntime(emulator, [agent], { plugins: host, outbound: sender, logger: recordingLogger() }, log), sender };
}

const fromApprover = (runtime: AgentRuntime, content: string) =>
  runtime.run({ agentId: "main", sessionKey: keyOf("1001", "main", "telegram"), content, channel: "telegram", account: "default", peer: "1001" }, () => {});

describe("taking over a parked turn", () => {
  it("is left to a live holder; resumed on the same approval once the holder is gone; completes once", async () => {
    const log = createMemorySessionLog();
    const first = setup(log);
    void send(first.runtime, 'use:echo {"text":"taken over"}', { peer: "frank", idempotencyKey: "msg-1" }).catch(() => {});
    await until(() => first.runtime.approvals.list().length === 1, 20_000, "a parked approval");
    const id = first.runtime.approvals.list()[0]!.id;

    const second = setup(log);
    // The first holder is alive: it lists the approval when asked.
    second.runtime.approvals.routeElsewhere({
      list: async () => first.runtime.approvals.list(),
      decide: (i, approved, who) => first.runtime.approvals.decideHere(i, approved, who),
    });
    expect(await second.runtime.resumeParked("msg-1")).toEqual({ heldElsewhere: id });
    expect(second.runtime.approvals.list()).toEqual([]);

    // The first holder dies (abandoned: nothing more of it is written, nobody answers for it).
    second.runtime.approvals.routeElsewhere({ list: async () => [], decide: async () => "unknown" });
    const taken = await second.runtime.resumeParked("msg-1");
    expect(taken).toMatchObject({ result: expect.any(Promise) });
    await until(() => second.runtime.approvals.list().length === 1, 20_000, "the approval waiting at the new holder");
    expect(second.runtime.approvals.list()[0]!.id).toBe(id);
    // Not asked again, not run again.
    expect(second.sender.sent).toEqual([]);
    expect(emulator.requests).toHaveLength(1);

    expect((await fromApprover(second.runtime, `approve ${id}`)).text).toBe(`Approved ${id}.`);
    const result = await (taken as { result: Promise<{ text: string }> }).result;
    expect(result.text).toBe("The answer is taken over.");
    // A repeat of the key gets the same outcome; a second takeover finds nothing to resume.
    expect((await send(second.runtime, "ignored", { peer: "frank", idempotencyKey: "msg-1" })).text).toBe("The answer is taken over.");
    expect(await second.runtime.resumeParked("msg-1")).toBeUndefined();
    const events = await log.read(keyOf("frank"), { afterSeq: 0, limit: 100 });
    expect(events.filter((e) => e.kind === "approval_resolved").map((e) => e.data)).toEqual([{ id, approved: true, by: APPROVER }]);
    expect(events.filter((e) => e.kind === "tool_result")).toHaveLength(1);
    expect(events.filter((e) => e.kind === "turn_ended")).toHaveLength(1);
    expect(events.filter((e) => e.kind === "error")).toHaveLength(0);
    expect(emulator.requests).toHaveLength(2);
  }, 60_000);
});
