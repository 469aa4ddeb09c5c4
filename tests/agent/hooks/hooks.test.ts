/**
 * Lifecycle hooks on the real runtime: real WASM fixture plugins (plugins/fixtures/hooks-*) in
 * the real plugin host (granted and approved), the model being the provider emulator
 * ("use:<tool> {json}" makes it call a tool). What the model saw is checked at the emulator.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLifecycleHooks, HookFailedError } from "../../../host/src/agent/hooks/index.js";
import type { HooksConfig } from "../../../host/src/config/index.js";
import { checkInterface, parseManifest, type PluginHost } from "../../../host/src/plugins/index.js";
import { startEmulator, type Emulator, type RecordedRequest } from "../../support/emulator/server.mjs";
import { agentConfig, keyOf, makeRuntime, recordingLogger, send } from "../support.js";
import { fixtureHost, HOOK_GRANTS } from "./support.js";

let emulator: Emulator;
let host: PluginHost;
let closeHost: () => Promise<void>;
beforeAll(async () => {
  emulator = await startEmulator();
  ({ host, close: closeHost } = await fixtureHost(HOOK_GRANTS));
}, 180_000);
afterAll(async () => {
  await closeHost?.();
  await emulator?.close();
});
beforeEach(() => emulator.reset());

function setup(hooks: Partial<HooksConfig>) {
  const config: HooksConfig = { order: [], timeoutMs: 2_000, fail: "open", plugins: {}, ...hooks };
  const logger = recordingLogger();
  const lifecycle = createLifecycleHooks({ host, config: () => config, logger });
  return { ...makeRuntime(emulator, [agentConfig()], { plugins: host, hooks: lifecycle, logger }), logger };
}

/** The tool_result blocks of a request's last message (Anthropic wire format). */
function toolResults(req: RecordedRequest): { content: unknown; is_error?: boolean }[] {
  const last = (req.body.messages as { content: { type: string }[] }[]).at(-1)!;
  return last.content.filter((b) => b.type === "tool_result") as never;
}
const text = (c: unknown) => (typeof c === "string" ? c : (c as { text: string }[]).map((b) => b.text).join(""));

describe("before_tool_call", () => {
  it("a veto reaches the model as an error result and the tool does not run", async () => {
    const { runtime } = setup({ order: ["hooks-a"] });
    const r = await send(runtime, 'use:echo {"text":"please veto this"}');
    expect(emulator.requests).toHaveLength(2);
    const [result] = toolResults(emulator.requests[1]!);
    expect(result!.is_error).toBe(true);
    expect(text(result!.content)).toContain("denied by plugin hooks-a: vetoed by hooks-a");
    expect(text(result!.content)).not.toContain("please veto this");
    expect(r.text).toContain("vetoed by hooks-a");
  });

  it("without the hook in [hooks] order the same call runs (deny by default: nothing runs unlisted)", async () => {
    const { runtime } = setup({ order: [] });
    await send(runtime, 'use:echo {"text":"please veto this"}');
    const [result] = toolResults(emulator.requests[1]!);
    expect(result!.is_error).toBeFalsy();
    expect(text(result!.content)).toBe("please veto this");
  });
});

describe("after_tool_call", () => {
  it("a redacting hook keeps a secret out of the model request and the session log", async () => {
    const { runtime, log } = setup({ order: ["hooks-a"] });
    await send(runtime, 'use:config {"key":"greeting"}', { peer: "redact" });
    const [result] = toolResults(emulator.requests[1]!);
    expect(text(result!.content)).toBe("the token is [redacted]-7f3a");
    const events = await log.read(keyOf("redact"), { afterSeq: 0, limit: 1000 });
    expect(events.some((e) => e.kind === "tool_result")).toBe(true);
    expect(JSON.stringify(events)).not.toContain("s3cr3t");
  });

  it("without the hook the secret is in the log (the test can fail)", async () => {
    const { runtime, log } = setup({ order: [] });
    await send(runtime, 'use:config {"key":"greeting"}', { peer: "plain" });
    expect(JSON.stringify(await log.read(keyOf("plain"), { afterSeq: 0, limit: 1000 }))).toContain("s3cr3t");
  });
});

describe("a looping hook", () => {
  it("is cut by its timeout; fail-open: the turn goes on and the tool runs", async () => {
    const { runtime, logger } = setup({ order: ["hooks-loop"], timeoutMs: 300, fail: "open" });
    const r = await send(runtime, 'use:echo {"text":"still here"}');
    expect(r.text).toContain("still here");
    expect(logger.lines.some((l) => l.msg === "hook failed" && String(l.obj.reason).includes("timed out after 300 ms"))).toBe(true);
  }, 60_000);

  it("is cut by its timeout; fail-closed: the turn stops with hook_failed and the model is not called again", async () => {
    const { runtime } = setup({ order: ["hooks-loop"], timeoutMs: 300, fail: "open", plugins: { "hooks-loop": { fail: "closed" } } });
    const err = await send(runtime, 'use:echo {"text":"stop"}').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HookFailedError);
    expect((err as HookFailedError).data).toMatchObject({ reason: "hook_failed", plugin: "hooks-loop", hook: "before_tool_call" });
    expect(emulator.requests).toHaveLength(1);
  }, 60_000);
});

describe("order", () => {
  it("[hooks] order decides which plugin runs first (system prompt additions, chained rewrites)", async () => {
    const ab = setup({ order: ["hooks-a", "hooks-b"] });
    await send(ab.runtime, 'use:config {"key":"greeting"}', { peer: "ab" });
    const sysAB = String(emulator.requests[0]!.body.system ?? JSON.stringify(emulator.requests[0]!.body.system));
    expect(sysAB.indexOf("context from hooks-a")).toBeGreaterThanOrEqual(0);
    expect(sysAB.indexOf("context from hooks-a")).toBeLessThan(sysAB.indexOf("context from hooks-b"));
    expect(text(toolResults(emulator.requests[1]!)[0]!.content)).toBe("the token is [redacted]-7f3a (seen by hooks-b)");

    emulator.reset();
    const ba = setup({ order: ["hooks-b", "hooks-a"] });
    await send(ba.runtime, "ping", { peer: "ba" });
    const sysBA = JSON.stringify(emulator.requests[0]!.body.system);
    expect(sysBA.indexOf("context from hooks-b")).toBeGreaterThanOrEqual(0);
    expect(sysBA.indexOf("context from hooks-b")).toBeLessThan(sysBA.indexOf("context from hooks-a"));
  });
});

describe("before_message and agent_response", () => {
  it("a dropped message is refused before it is journaled; a rewritten one is what the model and the log get", async () => {
    const { runtime, log } = setup({ order: ["hooks-a"] });
    const err = await send(runtime, "drop me", { peer: "drop" }).catch((e: unknown) => e);
    expect((err as { data?: unknown }).data).toMatchObject({ reason: "dropped_by_hook" });
    expect(await log.info(keyOf("drop"))).toBeFalsy();
    expect(emulator.requests).toHaveLength(0);

    const r = await send(runtime, "hello hooks", { peer: "rewrite" });
    expect(JSON.stringify(emulator.requests[0]!.body.messages)).toContain("hello (rewritten)");
    expect(JSON.stringify(emulator.requests[0]!.body.messages)).not.toContain("hello hooks");
    expect(r.text).toBe("You said: hello (rewritten) [checked by hooks-a]");
  });
});

describe("hooks are a capability", () => {
  it("a hook plugin loaded without the operator's grant of the hook (or its approval) is never called", async () => {
    const ungranted = await fixtureHost({ "hooks-a": {}, echo: HOOK_GRANTS.echo! });
    try {
      const config: HooksConfig = { order: ["hooks-a"], timeoutMs: 2_000, fail: "closed", plugins: {} };
      const lifecycle = createLifecycleHooks({ host: ungranted.host, config: () => config, logger: recordingLogger() });
      const { runtime } = makeRuntime(emulator, [agentConfig()], { plugins: ungranted.host, hooks: lifecycle });
      const r = await send(runtime, 'use:echo {"text":"please veto this"}');
      expect(r.text).toBe("The answer is please veto this.");
      expect(ungranted.host.list().find((p) => p.name === "hooks-a")?.capabilities.granted).toEqual({});
    } finally {
      await ungranted.close();
    }
  });

  it("the manifest names only known hooks, and a module must export each hook it requests", () => {
    const base = { abi: 1, name: "h", version: "1", kind: "tool", tools: [] };
    expect(parseManifest({ ...base, capabilities: { hooks: ["before_tool_call"] } }, "h.wasm").capabilities.hooks).toEqual(["before_tool_call"]);
    expect(() => parseManifest({ ...base, capabilities: { hooks: ["before_everything"] } }, "h.wasm")).toThrow(/capabilities\.hooks/);
    expect(() => parseManifest({ ...base, capabilities: {} }, "h.wasm")).toThrow(/at least one tool/);
    const manifest = parseManifest({ ...base, capabilities: { hooks: ["before_tool_call"] } }, "h.wasm");
    expect(checkInterface(manifest, [], [])).toMatch(/requests hook "before_tool_call" but the module does not export/);
    expect(checkInterface(manifest, [], [{ name: "before_tool_call", kind: "function" }])).toBeNull();
  });
});
