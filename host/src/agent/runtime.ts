import { randomUUID } from "node:crypto";
import type { AgentConfig, ProviderName } from "../config/types.js";
import { ErrorCode, RpcError } from "../protocol/errors.js";
import type { PluginRegistry } from "../plugins/types.js";
import type { SessionStore } from "../store/types.js";
import { SessionLanes } from "./lanes.js";
import { runTurn, type TurnTools } from "./loop.js";
import { compileToolAllowlist } from "./tool-policy.js";
import type { ChatMessage, ModelProvider, TurnEvent, TurnOutcome } from "./types.js";

/** A turn to run: which agent, which session, what the user said. */
export interface TurnRequest {
  agentId: string;
  sessionKey: string;
  content: string;
  /** Run id to use (e.g. already announced to the client); generated when absent. */
  runId?: string;
}

/** Options of {@link AgentRuntime}. */
export interface AgentRuntimeOptions {
  agents: AgentConfig[];
  providers: (name: ProviderName) => ModelProvider;
  plugins: Pick<PluginRegistry, "tools" | "callTool">;
  store: SessionStore<ChatMessage>;
  /** Turns allowed per session (running + queued); default 32. */
  maxQueuedPerSession?: number;
}

/**
 * Runs turns: one at a time per session key (later ones wait their turn), different sessions
 * concurrently. A turn's messages are appended to the session only when it succeeds, so a
 * failed turn leaves the history valid for the next one.
 */
export class AgentRuntime {
  private readonly agents: Map<string, { config: AgentConfig; allows: (tool: string) => boolean }>;
  private readonly lanes: SessionLanes;
  private readonly inflight = new Map<string, AbortController>();
  private closing = false;
  private aborting = false;

  constructor(private readonly options: AgentRuntimeOptions) {
    this.agents = new Map(options.agents.map((a) => [a.id, { config: a, allows: compileToolAllowlist(a.tools) }]));
    this.lanes = new SessionLanes(options.maxQueuedPerSession ?? 32);
  }

  /** Sessions with history. */
  sessionCount(): number {
    return this.options.store.count();
  }

  /** Turns running or queued. */
  activeTurns(): number {
    return this.lanes.size;
  }

  /**
   * Runs one turn in its session's lane.
   * @param emit receives the turn's events in order (text, tool_use, tool_result, usage)
   * @param signal aborts this turn (e.g. the client went away)
   * @returns the outcome and the run id
   * @throws RpcError: -32005 shutting down, -32004 session queue full, -32602 unknown agent,
   *   -32002 iteration limit, -32000/-32001 provider failures, -32006 aborted
   */
  async run(request: TurnRequest, emit: (ev: TurnEvent) => void, signal?: AbortSignal): Promise<TurnOutcome & { runId: string }> {
    if (this.closing) throw new RpcError(ErrorCode.ShuttingDown, "the gateway is shutting down");
    const agent = this.agents.get(request.agentId);
    if (!agent) throw new RpcError(ErrorCode.InvalidParams, `unknown agent "${request.agentId}"`);
    const runId = request.runId ?? randomUUID();
    return this.lanes.run(request.sessionKey, async () => {
      const controller = new AbortController();
      const onAbort = () => controller.abort(signal?.reason);
      if (signal?.aborted || this.aborting) controller.abort(signal?.reason);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.inflight.set(runId, controller);
      try {
        const { config } = agent;
        const history = await this.options.store.load(request.sessionKey);
        const tools: TurnTools = {
          specs: this.options.plugins.tools().filter((t) => agent.allows(t.name)),
          call: (name, input, s) => this.options.plugins.callTool(name, input, s),
        };
        const record = await runTurn(
          {
            provider: this.options.providers(config.provider),
            model: config.model,
            system: config.systemPrompt,
            maxTokens: config.maxTokens,
            maxIterations: config.maxIterations,
            history,
            content: request.content,
            tools,
          },
          emit,
          controller.signal,
        );
        await this.options.store.append(request.sessionKey, record.messages);
        return { ...record.outcome, runId };
      } catch (err) {
        if (controller.signal.aborted && !(err instanceof RpcError && err.code !== ErrorCode.Aborted)) {
          throw new RpcError(ErrorCode.Aborted, this.closing ? "turn aborted: the gateway is shutting down" : "turn aborted");
        }
        throw err;
      } finally {
        signal?.removeEventListener("abort", onAbort);
        this.inflight.delete(runId);
      }
    });
  }

  /**
   * Stops taking turns, waits up to `graceMs` for running and queued turns to finish, then
   * aborts the rest. Resolves when no turn is left.
   */
  async drain(graceMs: number): Promise<void> {
    this.closing = true;
    const deadline = Date.now() + graceMs;
    while (this.lanes.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    this.aborting = true;
    for (const c of this.inflight.values()) c.abort(new Error("shutdown"));
    while (this.lanes.size > 0) await new Promise((r) => setTimeout(r, 10));
  }
}
