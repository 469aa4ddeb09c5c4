/**
 * Durable human approvals on the real runtime (real echo plugin, the provider emulator as the
 * model): a call under an agent's approval rules parks with `approval_pending` in the session
 * log, the approver is asked on its channel with a short id, and `approve <id>` / `deny <id>`
 * from the approver (only from it), or the timeout, decides what the model sees. A runtime
 * abandoned while parked and a new one on the same log (a restart) resume the turn once.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { AgentRuntime } from "../../../host/src/agent/runtime.js";
import type { AgentApprovals } from "../../../host/src/config/index.js";
import type { PluginHost } from "../../../host/src/plugins/index.js";
import { createMemorySessionLog, type SessionLog } from "../../../host/src/store/index.js";
import { startEmulator, type Emulator, type RecordedRequest } from "../../support/emulator/server.mjs";
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

function setup(approvals: Partial<AgentApprovals> = {}, log: SessionLog = createMemorySessionLog()) {
  const sender = recordingSender();
  const agent = agentConfig({ approvals: { rules: [{ tool: "echo" }], approver: APPROVER, timeoutMs: 60_000, ...approvals } });
  const made = makeRuntime(emulator, [agent], { plugins: host, outbound: sender, logger: recordingLogger() }, log);
  return { ...made, sender };
}

/** A message from telegram peer `peer` (its own session), as the channels service hands it over. */
function fromTelegram(runtime: AgentRuntime, peer: string, content: string) {
  return runtime.run({ agentId: "main", sessionKey: keyOf(peer, "main", "telegram"), content, channel: "telegram", account: "default", peer }, () => {});
}

const lastToolResult = (req: RecordedRequest) => JSON.stringify((req.body.messages as unknown[]).at(-1));

describe("approvals", () => {
  it("parks with approval_pending, asks the approver with a short id, and runs the tool once approved", async () => {
    const { runtime, log, sender } = setup();
    const turn = send(runtime, 'use:echo {"text":"launch"}', { peer: "alice" });
    await until(() => runtime.approvals.list().length === 1, 20_000, "a parked approval");
    const [pending] = runtime.approvals.list();
    expect(pending!.id).toMatch(/^[a-z2-9]{6}$/);
    const events = await log.read(keyOf("alice"), { afterSeq: 0, limit: 100 });
    expect(events.find((e) => e.kind === "approval_pending")?.data).toMatchObject({ id: pending!.id, tool: "echo", approver: APPROVER });
    await until(() => sender.sent.length === 1, 5_000, "the approver asked");
    expect(sender.sent[0]).toMatchObject({ channel: "telegram", account: "default", peer: "1001" });
    expect(sender.sent[0]!.content).toContain(`approve ${pending!.id}`);
    expect(emulator.requests).toHaveLength(1);

    const answer = await fromTelegram(runtime, "1001", `approve ${pending!.id}`);
    expect(answer.text).toBe(`Approved ${pending!.id}.`);
    const r = await turn;
    expect(r.text).toBe("The answer is launch.");
    expect(lastToolResult(emulator.requests[1]!)).toContain("launch");
    const after = await log.read(keyOf("alice"), { afterSeq: 0, limit: 100 });
    expect(after.filter((e) => e.kind === "approval_resolved").map((e) => e.data)).toEqual([{ id: pending!.id, approved: true, by: APPROVER }]);
    expect(after.filter((e) => e.kind === "turn_ended")).toHaveLength(1);
  }, 60_000);

  it("a different peer cannot approve (its message is an ordinary turn); a denial reaches the model", async () => {
    const { runtime } = setup();
    const turn = send(runtime, 'use:echo {"text":"launch"}', { peer: "bob" });
    await until(() => runtime.approvals.list().length === 1, 20_000, "a parked approval");
    const id = runtime.approvals.list()[0]!.id;
    const other = await fromTelegram(runtime, "2002", `approve ${id}`);
    expect(other.text).toBe(`You said: approve ${id}`);
    // The requesting peer itself is not the approver either.
    const self = await fromTelegram(runtime, "bob", `approve ${id}`);
    expect(self.text).toBe(`You said: approve ${id}`);
    expect(runtime.approvals.list().map((a) => a.id)).toEqual([id]);

    await fromTelegram(runtime, "1001", `deny ${id}`);
    const r = await turn;
    expect(lastToolResult(emulator.requests.at(-1)!)).toContain("the approver denied this call");
    expect(r.text).toContain("the approver denied this call");
  }, 60_000);

  it("an unanswered approval is denied at its timeout and the model sees it", async () => {
    const { runtime, log } = setup({ timeoutMs: 300 });
    const r = await send(runtime, 'use:echo {"text":"launch"}', { peer: "carol" });
    expect(r.text).toContain("approval timed out");
    expect(lastToolResult(emulator.requests.at(-1)!)).toContain("approval timed out");
    const events = await log.read(keyOf("carol"), { afterSeq: 0, limit: 100 });
    expect(events.find((e) => e.kind === "approval_resolved")?.data).toMatchObject({ approved: false, by: "timeout" });
  }, 60_000);

  it("calls not matching the rules run without asking", async () => {
    const { runtime, sender } = setup({ rules: [{ tool: "echo", input: /rm -rf/ }] });
    const r = await send(runtime, 'use:echo {"text":"harmless"}', { peer: "dave" });
    expect(r.text).toBe("The answer is harmless.");
    expect(sender.sent).toHaveLength(0);
  }, 60_000);

  it("a restart while parked: the new process resumes the turn, which completes once after the approval", async () => {
    const log = createMemorySessionLog();
    const first = setup({}, log);
    void send(first.runtime, 'use:echo {"text":"after restart"}', { peer: "erin" }).catch(() => {});
    await until(() => first.runtime.approvals.list().length === 1, 20_000, "a parked approval");
    const id = first.runtime.approvals.list()[0]!.id;
    // The first process dies here (abandoned: nothing more of it is written).
    const second = setup({}, log);
    expect(await second.runtime.recover()).toEqual({ rerun: 1, failed: 0 });
    await until(() => second.runtime.approvals.list().length === 1, 20_000, "the approval waiting again");
    expect(second.runtime.approvals.list()[0]!.id).toBe(id);
    await fromTelegram(second.runtime, "1001", `approve ${id}`);
    await second.runtime.whenIdle();
    const events = await log.read(keyOf("erin"), { afterSeq: 0, limit: 100 });
    expect(events.filter((e) => e.kind === "turn_ended")).toHaveLength(1);
    expect(events.filter((e) => e.kind === "error")).toHaveLength(0);
    expect(events.filter((e) => e.kind === "tool_result").map((e) => e.data)).toEqual([expect.objectContaining({ content: "after restart", isError: false })]);
    expect(JSON.stringify(events.filter((e) => e.kind === "assistant_text").map((e) => e.data))).toContain("The answer is after restart.");
    // One model call before the park, one after the resume: the first is not repeated.
    expect(emulator.requests).toHaveLength(2);
  }, 60_000);

  it("a shutdown while parked leaves the run open (no error event), and the next start resumes it", async () => {
    const log = createMemorySessionLog();
    const first = setup({}, log);
    const turn = send(first.runtime, 'use:echo {"text":"across a drain"}', { peer: "frank" }).catch((e: unknown) => e);
    await until(() => first.runtime.approvals.list().length === 1, 20_000, "a parked approval");
    const id = first.runtime.approvals.list()[0]!.id;
    await first.runtime.drain(0);
    await turn;
    expect((await log.read(keyOf("frank"), { afterSeq: 0, limit: 100 })).filter((e) => e.kind === "error")).toHaveLength(0);
    const second = setup({}, log);
    expect(await second.runtime.recover()).toEqual({ rerun: 1, failed: 0 });
    await until(() => second.runtime.approvals.list().length === 1, 20_000, "the approval waiting again");
    await fromTelegram(second.runtime, "1001", `deny ${id}`);
    await second.runtime.whenIdle();
    const events = await log.read(keyOf("frank"), { afterSeq: 0, limit: 100 });
    expect(events.filter((e) => e.kind === "turn_ended")).toHaveLength(1);
    expect(JSON.stringify(events.filter((e) => e.kind === "tool_result").map((e) => e.data))).toContain("the approver denied this call");
  }, 60_000);
});
