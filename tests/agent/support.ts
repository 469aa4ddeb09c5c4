/**
 * Builds an AgentRuntime for tests from real parts: the memory session log, the real provider
 * adapters (official SDKs) pointed at the provider emulator, and a tool registry stub that runs
 * no plugin (the built-in tools are what these tests exercise).
 */
import { AgentRuntime, type AgentRuntimeOptions, type TurnResult } from "../../host/src/agent/runtime.js";
import { createProviderSet } from "../../host/src/agent/providers/index.js";
import type { OutboundSender, OutboundTarget, TurnEvent } from "../../host/src/agent/types.js";
import type { AgentConfig } from "../../host/src/config/types.js";
import { createMemorySessionLog, formatSessionKey, type SessionEvent, type SessionLog } from "../../host/src/store/index.js";
import type { Emulator, RecordedRequest } from "../support/emulator/server.mjs";

/** An agent config with test defaults (anthropic, model `test-model`, every tool). */
export function agentConfig(over: Partial<AgentConfig> = {}): AgentConfig {
  return {
    id: "main",
    provider: "anthropic",
    model: "test-model",
    maxIterations: 10,
    maxTokens: 4096,
    tools: ["*"],
    contextWindow: 100_000,
    outbound: [],
    queue: { mode: "followup", cap: 32, drop: "new" },
    ...over,
  };
}

/** Session key of `peer` on channel `ws`, account `default`. */
export const keyOf = (peer: string, agent = "main", channel = "ws", account = "default") => formatSessionKey({ agent, channel, account, peer });

/** A pino-shaped logger that records warn/info/error calls (the runtime only uses these levels). */
export function recordingLogger() {
  const lines: { level: string; obj: Record<string, unknown>; msg: string }[] = [];
  const at = (level: string) => (obj: Record<string, unknown> | string, msg?: string) => {
    lines.push(typeof obj === "string" ? { level, obj: {}, msg: obj } : { level, obj, msg: msg ?? "" });
  };
  const logger = { lines, warn: at("warn"), info: at("info"), error: at("error"), debug: at("debug"), trace: at("trace"), fatal: at("fatal") };
  return logger as typeof logger & AgentRuntimeOptions["logger"];
}

/** An OutboundSender that records what it was asked to send (and can be told to fail). */
export function recordingSender(fail?: string) {
  const sent: OutboundTarget[] = [];
  const sender: OutboundSender & { sent: OutboundTarget[] } = {
    sent,
    async send(target) {
      sent.push(target);
      if (fail) throw new Error(fail);
      return { platformMessageId: `pm-${sent.length}` };
    },
  };
  return sender;
}

/** A runtime on a fresh memory log, providers at the emulator. */
export function makeRuntime(emulator: Emulator, agents: AgentConfig[], over: Partial<AgentRuntimeOptions> = {}, log: SessionLog = createMemorySessionLog()) {
  const endpoint = { apiKey: "sk-test", timeoutMs: 60_000 };
  const providers = createProviderSet({
    anthropic: { ...endpoint, baseUrl: emulator.url },
    openai: { ...endpoint, baseUrl: `${emulator.url}/v1` },
    ollama: { baseUrl: emulator.url, timeoutMs: 60_000 },
    gemini: { ...endpoint, baseUrl: emulator.url },
  });
  const runtime = new AgentRuntime({
    agents,
    providers,
    plugins: { tools: () => [], callTool: async (name) => ({ content: `no plugin tool ${name}`, isError: true }) },
    log,
    ...over,
  });
  return { runtime, log };
}

/** Sends `content` as peer `peer` of agent `agent`; collects the turn's events into `events`. */
export function send(
  runtime: AgentRuntime,
  content: string,
  opts: { peer?: string; agent?: string; idempotencyKey?: string; thread?: string; events?: TurnEvent[]; onAccepted?: (runId: string) => void } = {},
): Promise<TurnResult> {
  const agent = opts.agent ?? "main";
  return runtime.run(
    {
      agentId: agent,
      sessionKey: keyOf(opts.peer ?? "alice", agent),
      content,
      ...(opts.idempotencyKey !== undefined ? { idempotencyKey: opts.idempotencyKey } : {}),
      ...(opts.thread !== undefined ? { thread: opts.thread } : {}),
    },
    (e) => opts.events?.push(e),
    undefined,
    opts.onAccepted ? { onAccepted: opts.onAccepted } : undefined,
  );
}

/** Text of the last user message of an Anthropic request body (text blocks joined by "\n"). */
export function lastUserText(req: RecordedRequest): string {
  const messages = (req.body.messages ?? []) as { role: string; content: string | { type: string; text?: string }[] }[];
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i]!;
    if (m.role !== "user") continue;
    const text =
      typeof m.content === "string"
        ? m.content
        : m.content
            .filter((b) => b.type === "text")
            .map((b) => b.text)
            .join("\n");
    if (text) return text;
  }
  return "";
}

/** The session's events of one kind. */
export const ofKind = (events: SessionEvent[], kind: SessionEvent["kind"]) => events.filter((e) => e.kind === kind);

/** Waits until `cond()` holds (polling every 5 ms), or fails after `ms`. */
export async function until(cond: () => boolean, ms = 10_000, what = "condition"): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
