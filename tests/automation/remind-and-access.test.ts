/**
 * The security claims of scheduled work (docs/security.md, "Scheduled work"): reminders belong to
 * the conversation that set them; scheduled replies go only to the job's own conversation or the
 * agent's outbound allowlist; the jobs file is private (0600); every `cron.*` method needs admin.
 */
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { Automation, FileJobStore, MemoryJobStore, Scheduler, remindTool, type Job } from "../../host/src/automation/index.js";
import type { AgentConfig } from "../../host/src/config/index.js";
import { registerCronMethods } from "../../host/src/gateway/cron-methods.js";
import type { MethodContext, MethodHandler } from "../../host/src/gateway/index.js";
import { parseSessionKey } from "../../host/src/store/index.js";

const logger = pino({ level: "silent" });
const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function scheduler(): Scheduler {
  return new Scheduler({
    configJobs: [],
    store: new MemoryJobStore(),
    claim: { claim: async () => true },
    logger,
    runTurn: async () => ({ text: "x" }),
    deliver: async () => {},
  });
}

const ctxOf = (sessionKey: string) => ({ agentId: "main", sessionKey, session: parseSessionKey(sessionKey) });
const ALICE = "agent:main:telegram:default:4242";
const BOB = "agent:main:telegram:default:5151";

describe("the remind tool", () => {
  it("a reminder belongs to the conversation that set it: another peer neither lists nor cancels it", async () => {
    const s = scheduler();
    await s.start();
    const tool = remindTool({ scheduler: () => s, canDeliver: (c) => c === "telegram" });
    const set = await tool.call({ action: "set", text: "dentist", in_seconds: 600 }, ctxOf(ALICE));
    expect(set.isError).toBe(false);
    const { id } = JSON.parse(set.content) as { id: string };
    expect(s.get(id)!.job).toMatchObject({ kind: "reminder", owner: ALICE, deliver: { channel: "telegram", account: "default", peer: "4242" } });

    expect(JSON.parse((await tool.call({ action: "list" }, ctxOf(BOB))).content)).toEqual([]);
    const cancel = await tool.call({ action: "cancel", id }, ctxOf(BOB));
    expect(cancel).toEqual({ isError: true, content: `remind: no pending reminder "${id}" in this conversation` });
    expect(s.get(id)).toBeDefined();
    expect(JSON.parse((await tool.call({ action: "list" }, ctxOf(ALICE))).content)).toMatchObject([{ id, text: "dentist", follow_up: false }]);
    expect((await tool.call({ action: "cancel", id }, ctxOf(ALICE))).isError).toBe(false);
    expect(s.get(id)).toBeUndefined();
    await s.stop();
  });

  it("bad input is an error result naming what was wrong", async () => {
    const s = scheduler();
    await s.start();
    const tool = remindTool({ scheduler: () => s, canDeliver: (c) => c === "telegram" });
    const cases: [unknown, RegExp][] = [
      ["set", /input must be an object/],
      [{ action: "snooze" }, /action must be "set", "list" or "cancel"/],
      [{ action: "set", in_seconds: 5 }, /set needs a non-empty text/],
      [{ action: "set", text: "x" }, /exactly one of in_seconds or at/],
      [{ action: "set", text: "x", in_seconds: 5, at: "2030-01-01T00:00:00Z" }, /exactly one of in_seconds or at/],
      [{ action: "set", text: "x", at: "2001-01-01T00:00:00Z" }, /is in the past/],
      [{ action: "set", text: "x", at: "soon" }, /ISO 8601/],
      [{ action: "set", text: "x", in_seconds: 400 * 86400 }, /at most 366 days ahead/],
      [{ action: "cancel" }, /needs the reminder's id/],
    ];
    for (const [input, re] of cases) {
      const r = await tool.call(input, ctxOf(ALICE));
      expect(r.isError, JSON.stringify(input)).toBe(true);
      expect(r.content, JSON.stringify(input)).toMatch(re);
    }
    const ws = await tool.call({ action: "set", text: "x", in_seconds: 5 }, ctxOf("agent:main:ws:default:main"));
    expect(ws.content).toMatch(/messaging channels only/);
    await s.stop();
  });
});

describe("scheduled delivery and the jobs file", () => {
  const agent = (outbound: string[]): AgentConfig => ({ id: "main", outbound }) as unknown as AgentConfig;

  it("a scheduled reply goes only to the agent's outbound allowlist (or the job's own conversation); the jobs file is 0600", async () => {
    const stateDir = mkdtempSync(join(tmpdir(), "exoclaw-automation-"));
    dirs.push(stateDir);
    const sent: string[] = [];
    const automation = new Automation({
      cron: [
        { id: "allowed", agent: "main", every: "1h", prompt: "p", deliver: { channel: "telegram", account: "default", peer: "1" }, missed: "skip" },
        { id: "refused", agent: "main", every: "1h", prompt: "p", deliver: { channel: "telegram", account: "default", peer: "666" }, missed: "skip" },
        {
          id: "own",
          agent: "main",
          every: "1h",
          prompt: "p",
          session: "agent:main:telegram:default:777",
          deliver: { channel: "telegram", account: "default", peer: "777" },
          missed: "skip",
        },
      ],
      agents: [agent(["telegram:1"])],
      stateDir,
      logger,
    });
    await automation.start({
      runtime: { run: async () => ({ text: "report" }) as never },
      outbound: { send: async (t) => (sent.push(t.peer), {}) },
      channelNames: () => ["telegram"],
    });
    const s = automation.running!;
    expect(await s.runNow("allowed")).toBe("delivered");
    expect(await s.runNow("refused")).toBe("failed");
    expect(s.get("refused")!.state.lastError).toMatch(/telegram peer "666" is not in agent "main"'s outbound allowlist/);
    expect(await s.runNow("own")).toBe("delivered");
    expect(sent).toEqual(["1", "777"]);
    await automation.stop();
    const file = FileJobStore.pathFor(stateDir);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(stateDir, "automation")).mode & 0o777).toBe(0o700);
  });
});

describe("cron.* methods", () => {
  it("every method needs scope admin (-32010 for a chat-only client)", async () => {
    const methods = new Map<string, MethodHandler>();
    const s = scheduler();
    await s.start();
    registerCronMethods(methods, { scheduler: () => s, agentIds: () => ["main"], defaultAgent: () => "main", logger });
    const chatOnly = { identity: { account: "app", scopes: new Set(["chat"]) } } as unknown as MethodContext;
    for (const [method, params] of [
      ["cron.list", {}],
      ["cron.add", { id: "x", every: "1h", prompt: "p" }],
      ["cron.remove", { id: "x" }],
      ["cron.run", { id: "x" }],
    ] as const) {
      await expect(methods.get(method)!(params, chatOnly), method).rejects.toMatchObject({ code: -32010 });
    }
    const admin = { identity: { account: "default", scopes: new Set(["chat", "admin"]) } } as unknown as MethodContext;
    const added = (await methods.get("cron.add")!({ id: "x", every: "1h", prompt: "p" }, admin)) as { job: Job };
    expect(added.job).toMatchObject({ id: "x", schedule: { every: "3600s" }, source: "runtime" });
    await expect(methods.get("cron.add")!({ id: "y", every: "1h", prompt: "p", agent: "ghost" }, admin)).rejects.toMatchObject({ code: -32602 });
    await expect(methods.get("cron.add")!({ id: "y", cron: "nope", prompt: "p" }, admin)).rejects.toThrow(/cron: invalid cron expression/);
    await s.stop();
  });
});
