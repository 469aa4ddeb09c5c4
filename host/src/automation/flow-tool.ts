/**
 * The built-in `flow` tool (nexo-rs TaskFlow's shape): `start | status | advance | wait | finish |
 * fail | cancel | list_mine`. Flows belong to the conversation that started them (host-written);
 * another conversation's flow is answered as unknown. See flows.ts.
 */
import type { HostTool, HostToolContext } from "../agent/index.js";
import type { ToolResult, ToolSpec } from "../plugins/index.js";
import { FlowError, type Flow, type FlowService } from "./flows.js";

/** Name of the tool. */
export const FLOW = "flow";

/** The JSON schema the model sees. */
export const FLOW_SPEC: ToolSpec = {
  name: FLOW,
  description:
    "Durable multi-step work that waits on a timer, an external event or the person, and survives restarts. " +
    "start {title, correlation_id, state?, horizon_seconds?} -> id. status {id}. advance {id, step?, state?}. " +
    "wait {id, in_seconds | until (ISO 8601)} (timer), {id, event: true} (returns a URL path and a secret for the external system: POST the event's JSON there with header X-Exoclaw-Flow-Secret), or {id, person: true}. " +
    "When a wait ends you get a message starting with [flow <id> ...] with any event payload. finish {id, result?}. fail {id, reason}. cancel {id}. list_mine.",
  inputSchema: {
    type: "object",
    properties: {
      action: { type: "string", enum: ["start", "status", "advance", "wait", "finish", "fail", "cancel", "list_mine"] },
      id: { type: "string" },
      title: { type: "string" },
      correlation_id: { type: "string" },
      state: { description: "any JSON (at most 16 KiB)" },
      horizon_seconds: { type: "number", description: "the flow fails if not finished by then; default 7 days, at most 30" },
      step: { type: "string" },
      in_seconds: { type: "number" },
      until: { type: "string" },
      event: { type: "boolean" },
      person: { type: "boolean" },
      result: { description: "any JSON (finish)" },
      reason: { type: "string", description: "why it failed (fail)" },
    },
    required: ["action"],
    additionalProperties: false,
  },
};

/** Options of {@link flowTool}. */
export interface FlowToolOptions {
  flows: () => FlowService | undefined;
  canDeliver(channel: string): boolean;
  now?: () => number;
}

const err = (content: string): ToolResult => ({ content: `flow: ${content}`, isError: true });
const ok = (value: unknown): ToolResult => ({ content: JSON.stringify(value), isError: false });

/** What the model sees of a flow (never the event secret's hash). */
function view(f: Flow): Record<string, unknown> {
  return {
    id: f.id,
    title: f.title,
    correlation_id: f.correlationId,
    status: f.status,
    step: f.step,
    state: f.state,
    waiting_on: f.wait?.on ?? null,
    ...(f.wait?.on === "timer" ? { wait_until: new Date(f.wait.untilMs).toISOString() } : {}),
    horizon: new Date(f.horizonAt).toISOString(),
    ...(f.result !== undefined ? { result: f.result } : {}),
    ...(f.error !== undefined ? { error: f.error } : {}),
  };
}

/** The `flow` host tool. */
export function flowTool(options: FlowToolOptions): HostTool {
  const now = options.now ?? Date.now;
  return {
    spec: FLOW_SPEC,
    available: () => options.flows() !== undefined,
    async call(input, ctx: HostToolContext) {
      const flows = options.flows();
      if (flows === undefined) return err("flows are not running");
      const o = input !== null && typeof input === "object" && !Array.isArray(input) ? (input as Record<string, unknown>) : undefined;
      if (o === undefined) return err("input must be an object with an action");
      const id = typeof o.id === "string" ? o.id : "";
      const str = (v: unknown) => (typeof v === "string" ? v : "");
      try {
        switch (o.action) {
          case "start": {
            const { channel, account, peer } = ctx.session;
            const f = await flows.create({
              agent: ctx.agentId,
              owner: ctx.sessionKey,
              ...(options.canDeliver(channel) ? { deliver: { channel, account, peer, ...(ctx.thread !== undefined ? { thread: ctx.thread } : {}) } } : {}),
              title: str(o.title),
              correlationId: str(o.correlation_id),
              state: o.state,
              ...(typeof o.horizon_seconds === "number" ? { horizonMs: Math.round(o.horizon_seconds * 1000) } : {}),
            });
            return ok(view(f));
          }
          case "status": {
            const f = flows.get(id);
            if (f === undefined || f.owner !== ctx.sessionKey) return err(`no flow ${JSON.stringify(id)} in this conversation`);
            return ok(view(f));
          }
          case "list_mine":
            return ok(flows.list(ctx.sessionKey).map(view));
          case "advance":
            return ok(
              view(
                await flows.update(id, ctx.sessionKey, {
                  ...(o.step !== undefined ? { step: str(o.step) } : {}),
                  ...(o.state !== undefined ? { state: o.state } : {}),
                  status: "running",
                  wait: null,
                }),
              ),
            );
          case "wait": {
            const kinds = [o.in_seconds !== undefined || o.until !== undefined, o.event === true, o.person === true].filter(Boolean).length;
            if (kinds !== 1) return err("wait needs exactly one of in_seconds/until, event: true or person: true");
            if (o.event === true) {
              const { flow, secret } = await flows.waitForEvent(id, ctx.sessionKey);
              return ok({ ...view(flow), event_url_path: `/flows/${flow.id}/events`, event_secret: secret });
            }
            if (o.person === true) return ok(view(await flows.update(id, ctx.sessionKey, { status: "waiting", wait: { on: "person" } })));
            const untilMs = typeof o.in_seconds === "number" ? now() + Math.round(o.in_seconds * 1000) : Date.parse(str(o.until));
            if (!Number.isFinite(untilMs) || untilMs <= now()) return err("the timer must end in the future (in_seconds >= 1, or until an ISO 8601 instant)");
            return ok(view(await flows.update(id, ctx.sessionKey, { status: "waiting", wait: { on: "timer", untilMs } })));
          }
          case "finish":
            return ok(view(await flows.update(id, ctx.sessionKey, { status: "finished", ...(o.result !== undefined ? { result: o.result } : {}) })));
          case "fail":
            return ok(view(await flows.update(id, ctx.sessionKey, { status: "failed", error: str(o.reason) || "failed by the agent" })));
          case "cancel":
            return ok(view(await flows.update(id, ctx.sessionKey, { status: "cancelled" })));
          default:
            return err("action must be one of start, status, advance, wait, finish, fail, cancel, list_mine");
        }
      } catch (e) {
        if (e instanceof FlowError) return err(e.message);
        throw e;
      }
    },
  };
}
