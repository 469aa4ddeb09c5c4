/**
 * The eight lifecycle hooks with their meaning (wit/exoclaw.wit, world `hooks`; docs/hooks.md).
 * Every hook gets `{hook, context, ...}` and answers a map `{action?, reason?, content?, input?}`
 * (an empty output or `{}` = go on unchanged):
 * - `before_message {content}`: `action "drop"` (the message is refused, never journaled) or
 *   `"rewrite"` with `content`.
 * - `before_tool_call {name, input}`: `"deny"` with `reason` (the model gets an error result
 *   naming it) or `"rewrite"` with `input`.
 * - `after_tool_call {name, input, content, isError}`: `"rewrite"` with `content` (redaction:
 *   what the model and the session log get).
 * - `before_model_call {iteration}`: `content` is added to the system prompt of that model call.
 * - `agent_response {text}`: `"rewrite"` with `content`: the turn's final text.
 * - `session_start {}`, `session_end {reason}`, `on_error {code, message}`: notifications (answers ignored).
 * Later plugins get the value as changed by earlier ones; a drop or a denial ends the chain.
 */
import type { ToolResult } from "../../plugins/index.js";
import { type HookContext, type HookRunner, str } from "./runner.js";

/** Result of `before_message`. */
export type MessageVerdict = { drop: true; plugin: string; reason: string } | { drop: false; content: string };
/** Result of `before_tool_call`. */
export type ToolVerdict = { deny: true; plugin: string; reason: string } | { deny: false; input: unknown };

/** The hooks of one gateway, over a {@link HookRunner}. */
export class LifecycleHooks {
  constructor(readonly runner: HookRunner) {}

  /** Whether any plugin is configured to run hooks. */
  get active(): boolean {
    return this.runner.active;
  }

  /** `before_message`. @throws HookFailedError (fail-closed) */
  async beforeMessage(ctx: HookContext, content: string, signal?: AbortSignal): Promise<MessageVerdict> {
    let value = content;
    let dropped: MessageVerdict | undefined;
    await this.runner.chain(
      "before_message",
      ctx,
      () => ({ content: value }),
      (a, plugin) => {
        if (a.action === "drop") {
          dropped = { drop: true, plugin, reason: str(a, "reason") ?? "dropped by a hook" };
          return true;
        }
        if (a.action === "rewrite" && str(a, "content") !== undefined) value = str(a, "content")!;
        return false;
      },
      signal,
    );
    return dropped ?? { drop: false, content: value };
  }

  /** `before_tool_call`. @throws HookFailedError (fail-closed); the signal's reason */
  async beforeToolCall(ctx: HookContext, name: string, input: unknown, signal?: AbortSignal): Promise<ToolVerdict> {
    let value = input;
    let denied: ToolVerdict | undefined;
    await this.runner.chain(
      "before_tool_call",
      ctx,
      () => ({ name, input: value ?? null }),
      (a, plugin) => {
        if (a.action === "deny") {
          denied = { deny: true, plugin, reason: str(a, "reason") ?? "denied by a hook" };
          return true;
        }
        if (a.action === "rewrite" && "input" in a) value = a.input;
        return false;
      },
      signal,
    );
    return denied ?? { deny: false, input: value };
  }

  /** `after_tool_call`: the result as the model and the log get it. @throws HookFailedError (fail-closed); the signal's reason */
  async afterToolCall(ctx: HookContext, name: string, input: unknown, result: ToolResult, signal?: AbortSignal): Promise<ToolResult> {
    const value = { ...result };
    await this.runner.chain(
      "after_tool_call",
      ctx,
      () => ({ name, input: input ?? null, content: value.content, isError: value.isError }),
      (a) => {
        if (a.action === "rewrite" && str(a, "content") !== undefined) value.content = str(a, "content")!;
        return false;
      },
      signal,
    );
    return value;
  }

  /** `before_model_call`: text to add to that model call's system prompt (joined by blank lines), or undefined. */
  async beforeModelCall(ctx: HookContext, iteration: number, signal?: AbortSignal): Promise<string | undefined> {
    const added: string[] = [];
    await this.runner.chain(
      "before_model_call",
      ctx,
      () => ({ iteration }),
      (a) => {
        const c = str(a, "content");
        if (c !== undefined && c.length > 0) added.push(c);
        return false;
      },
      signal,
    );
    return added.length > 0 ? added.join("\n\n") : undefined;
  }

  /** `agent_response`: the turn's final text. @throws HookFailedError (fail-closed) */
  async agentResponse(ctx: HookContext, text: string, signal?: AbortSignal): Promise<string> {
    let value = text;
    await this.runner.chain(
      "agent_response",
      ctx,
      () => ({ text: value }),
      (a) => {
        if (a.action === "rewrite" && str(a, "content") !== undefined) value = str(a, "content")!;
        return false;
      },
      signal,
    );
    return value;
  }

  /**
   * `session_start`, `session_end`, `on_error`: notifications. Never throws for a hook's fault
   * (a notification cannot stop what already happened); the signal's reason when it aborts.
   */
  async notify(hook: "session_start" | "session_end" | "on_error", ctx: HookContext, data: Record<string, unknown>, signal?: AbortSignal): Promise<void> {
    try {
      await this.runner.chain(
        hook,
        ctx,
        () => data,
        () => false,
        signal,
      );
    } catch (err) {
      if (signal?.aborted) throw err;
    }
  }
}
