/**
 * The hook runner: calls one lifecycle hook (host/src/plugins/hook-names.ts) on each plugin of
 * `[hooks] order` that may run it, in that order, each call under its time limit, and folds their
 * answers. A failing call (error, trap, timeout, output that is not a map) is logged; with the
 * plugin's failure mode `open` the chain goes on as if that call had not happened, with `closed`
 * it stops the operation ({@link HookFailedError}).
 */
import type { Logger } from "pino";
import type { HooksConfig } from "../../config/index.js";
import { HookCallError, isAborted, type HookHost, type HookName, type ToolCallContext } from "../../plugins/index.js";
import { errorMessage } from "../../util/index.js";
import { AgentError } from "../errors.js";

/** Who a hook call is about (host-written, like a tool call's context) plus the run. */
export interface HookContext extends ToolCallContext {
  runId?: string;
}

/** A failing hook of a plugin whose failure mode is `closed`: the operation it guarded stops (-32008 plugin_error, `data.reason` "hook_failed"). */
export class HookFailedError extends AgentError {
  constructor(
    readonly plugin: string,
    readonly hook: HookName,
    message: string,
  ) {
    super("plugin_error", `hook ${hook} of plugin '${plugin}' failed and fails closed: ${message}`, { reason: "hook_failed", plugin, hook });
    this.name = "HookFailedError";
  }
}

/**
 * What one hook call came to (the `outcome` label of `exoclaw_hook_calls_total`):
 * - `allow`: answered and changed nothing (a pass, `{}`, any answer to a notification hook, an
 *   action the hook does not take);
 * - `deny`: `before_tool_call` answered `deny`, or `before_message` answered `drop`;
 * - `rewrite`: `rewrite` with the field the hook rewrites (`content`; `input` for
 *   `before_tool_call`), or `before_model_call` added non-empty `content`;
 * - `timeout`: cut by its time limit; `error`: failed otherwise (error, trap, output not a map).
 */
export type HookOutcome = "allow" | "deny" | "rewrite" | "timeout" | "error";

/** One finished hook call, for metrics and the bench: duration in ms, whether it answered, and its {@link HookOutcome}. */
export interface HookCallReport {
  plugin: string;
  hook: HookName;
  durationMs: number;
  ok: boolean;
  outcome: HookOutcome;
}

/** The outcome of a hook's answer, by the rules lifecycle.ts applies to it (see {@link HookOutcome}). */
export function answerOutcome(hook: HookName, answer: Record<string, unknown>): HookOutcome {
  const content = typeof answer.content === "string";
  switch (hook) {
    case "before_message":
      return answer.action === "drop" ? "deny" : answer.action === "rewrite" && content ? "rewrite" : "allow";
    case "before_tool_call":
      return answer.action === "deny" ? "deny" : answer.action === "rewrite" && "input" in answer ? "rewrite" : "allow";
    case "after_tool_call":
    case "agent_response":
      return answer.action === "rewrite" && content ? "rewrite" : "allow";
    case "before_model_call":
      return content && (answer.content as string).length > 0 ? "rewrite" : "allow";
    default:
      return "allow";
  }
}

/** Options of {@link HookRunner}. */
export interface HookRunnerOptions {
  host: HookHost;
  /** The current `[hooks]` (read at each call: a config reload applies to the next hook call). */
  config: () => HooksConfig;
  logger: Logger;
  /** Called after each hook call; must not throw. */
  onCall?: (report: HookCallReport) => void;
}

/**
 * Calls hooks in `[hooks] order`. A plugin that is not loaded, not granted and approved for the
 * hook, or does not export it is skipped silently (that is not a failure: most plugins have no
 * hook of a given name).
 */
export class HookRunner {
  constructor(private readonly options: HookRunnerOptions) {}

  /** Whether any plugin is configured to run hooks (a quick exit for the common case). */
  get active(): boolean {
    return this.options.config().order.length > 0;
  }

  /**
   * Runs `hook` on each configured plugin in order. `input` builds each call's input from the
   * value so far; `apply` folds a plugin's answer into it and returns true to stop the chain
   * (a drop or a denial: later plugins are not asked).
   * @throws HookFailedError when a plugin failing closed fails; the signal's reason when `signal` aborts
   */
  async chain(
    hook: HookName,
    ctx: HookContext,
    input: () => Record<string, unknown>,
    apply: (answer: Record<string, unknown>, plugin: string) => boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    const config = this.options.config();
    for (const plugin of config.order) {
      const answer = await this.callOne(config, plugin, hook, { hook, context: ctx, ...input() }, signal);
      if (answer !== undefined && apply(answer, plugin)) return;
    }
  }

  /** One hook call under its time limit; undefined when skipped or failed open. */
  private async callOne(
    config: HooksConfig,
    plugin: string,
    hook: HookName,
    input: Record<string, unknown>,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, unknown> | undefined> {
    const own = config.plugins[plugin];
    const timeoutMs = own?.timeoutMs ?? config.timeoutMs;
    const fail = own?.fail ?? config.fail;
    const timer = AbortSignal.timeout(timeoutMs);
    const combined = signal === undefined ? timer : AbortSignal.any([signal, timer]);
    const t0 = performance.now();
    let failure: string;
    let timedOut: boolean;
    try {
      const answer = await this.options.host.callHook(plugin, hook, input, combined);
      this.report(plugin, hook, t0, answerOutcome(hook, answer));
      return answer;
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (err instanceof HookCallError && err.kind === "not_available") return undefined;
      // Cut by the hook's limit here, or by the sandbox's own call timeout.
      timedOut = (isAborted(err) && timer.aborted) || (err instanceof HookCallError && err.kind === "timeout");
      failure = timedOut ? `timed out after ${timeoutMs} ms` : errorMessage(err);
    }
    this.report(plugin, hook, t0, timedOut ? "timeout" : "error");
    this.options.logger.warn(
      { plugin, hook, runId: input.context === undefined ? undefined : (input.context as HookContext).runId, fail, reason: failure },
      "hook failed",
    );
    if (fail === "closed") throw new HookFailedError(plugin, hook, failure);
    return undefined;
  }

  private report(plugin: string, hook: HookName, t0: number, outcome: HookOutcome): void {
    try {
      this.options.onCall?.({ plugin, hook, durationMs: performance.now() - t0, ok: outcome !== "timeout" && outcome !== "error", outcome });
    } catch {
      // A reporting fault never changes a hook's outcome.
    }
  }
}

/** A string field of a hook's answer, or undefined. */
export function str(answer: Record<string, unknown>, key: string): string | undefined {
  const v = answer[key];
  return typeof v === "string" ? v : undefined;
}
