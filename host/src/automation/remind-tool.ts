/**
 * The built-in `remind` tool: the model schedules a message (or a follow-up turn) for the peer it
 * is talking with, lists that conversation's pending reminders, or cancels one. Every reminder
 * belongs to the session it was set from (host-written, the model cannot name another): it is
 * delivered to that conversation's channel peer, and only that conversation lists or cancels it.
 * Operators see all of them in `cron.list` / `exoclaw cron list`.
 */
import { randomBytes } from "node:crypto";
import type { HostTool, HostToolContext } from "../agent/index.js";
import type { ToolResult, ToolSpec } from "../plugins/index.js";
import type { Job } from "./job.js";
import { MAX_PROMPT_CHARS } from "./job.js";
import type { Scheduler } from "./scheduler.js";

/** Name of the tool. */
export const REMIND = "remind";

/** Pending reminders one conversation may hold. */
export const MAX_REMINDERS_PER_SESSION = 50;

/** Farthest a reminder may be set ahead, ms (one year). */
export const MAX_REMINDER_HORIZON_MS = 366 * 86_400_000;

/** The JSON schema the model sees. */
export const REMIND_SPEC: ToolSpec = {
  name: REMIND,
  description:
    "Schedule a reminder for the person you are talking with, list their pending reminders, or cancel one. " +
    'action "set": give text and either in_seconds or at (ISO 8601, e.g. 2026-12-24T18:00:00Z); at that time the text is sent to this conversation ' +
    "(or, with follow_up true, you get the text back as a message and answer it then). " +
    'action "list": this conversation\'s pending reminders. action "cancel": give the id.',
  inputSchema: {
    type: "object",
    properties: {
      action: { type: "string", enum: ["set", "list", "cancel"] },
      text: { type: "string", description: "what to remind about (set)" },
      in_seconds: { type: "number", description: "seconds from now (set; or give at)" },
      at: { type: "string", description: "ISO 8601 instant (set; or give in_seconds)" },
      follow_up: { type: "boolean", description: "run a turn with the text at that time instead of sending it as is (set)" },
      id: { type: "string", description: "the reminder to cancel (cancel)" },
    },
    required: ["action"],
    additionalProperties: false,
  },
};

/** Options of {@link remindTool}. */
export interface RemindToolOptions {
  /** The running scheduler; undefined until it started (the tool is not offered before). */
  scheduler: () => Scheduler | undefined;
  /** Whether replies can be sent on this channel (a configured channel, not a WebSocket session). */
  canDeliver(channel: string): boolean;
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
}

const err = (content: string): ToolResult => ({ content: `remind: ${content}`, isError: true });
const ok = (value: unknown): ToolResult => ({ content: JSON.stringify(value), isError: false });

/** The `remind` host tool (see the file comment). */
export function remindTool(options: RemindToolOptions): HostTool {
  const now = options.now ?? Date.now;
  const mine = (ctx: HostToolContext) => (j: Job) => j.kind === "reminder" && j.owner === ctx.sessionKey;
  return {
    spec: REMIND_SPEC,
    available: () => options.scheduler() !== undefined,
    async call(input, ctx) {
      const scheduler = options.scheduler();
      if (scheduler === undefined) return err("the scheduler is not running");
      const o = input !== null && typeof input === "object" && !Array.isArray(input) ? (input as Record<string, unknown>) : undefined;
      if (o === undefined) return err('input must be an object with an action ("set", "list" or "cancel")');
      switch (o.action) {
        case "list":
          return ok(
            scheduler.list(mine(ctx)).map((v) => ({
              id: v.job.id,
              at: v.next !== undefined ? new Date(v.next).toISOString() : null,
              text: v.job.prompt,
              follow_up: v.job.action === "turn",
            })),
          );
        case "cancel": {
          if (typeof o.id !== "string" || o.id.length === 0) return err("cancel needs the reminder's id");
          const view = scheduler.get(o.id);
          // Another conversation's reminder is reported as unknown: its existence is not disclosed.
          if (view === undefined || !mine(ctx)(view.job)) return err(`no pending reminder ${JSON.stringify(o.id)} in this conversation`);
          await scheduler.remove(o.id);
          return ok({ cancelled: o.id });
        }
        case "set":
          return set(o, ctx, scheduler);
        default:
          return err('action must be "set", "list" or "cancel"');
      }
    },
  };

  async function set(o: Record<string, unknown>, ctx: HostToolContext, scheduler: Scheduler): Promise<ToolResult> {
    if (typeof o.text !== "string" || o.text.trim().length === 0) return err("set needs a non-empty text");
    if (o.text.length > MAX_PROMPT_CHARS) return err(`text is longer than ${MAX_PROMPT_CHARS} characters`);
    const t = now();
    let atMs: number;
    if (typeof o.in_seconds === "number" && o.at === undefined) {
      if (!Number.isFinite(o.in_seconds) || o.in_seconds < 1) return err("in_seconds must be a number of at least 1");
      atMs = t + Math.round(o.in_seconds * 1000);
    } else if (typeof o.at === "string" && o.in_seconds === undefined) {
      atMs = Date.parse(o.at);
      if (!Number.isFinite(atMs)) return err(`at must be an ISO 8601 instant such as 2026-12-24T18:00:00Z (got ${JSON.stringify(o.at)})`);
      if (atMs <= t) return err(`at (${o.at}) is in the past; now is ${new Date(t).toISOString()}`);
    } else return err("set needs exactly one of in_seconds or at");
    if (atMs - t > MAX_REMINDER_HORIZON_MS) return err("a reminder can be set at most 366 days ahead");
    if (scheduler.list(mine(ctx)).length >= MAX_REMINDERS_PER_SESSION)
      return err(`this conversation already has ${MAX_REMINDERS_PER_SESSION} pending reminders; cancel one first`);
    const followUp = o.follow_up === true;
    const { channel, account, peer } = ctx.session;
    const job: Job = {
      id: `r-${randomBytes(5).toString("hex")}`,
      kind: "reminder",
      agent: ctx.agentId,
      schedule: { kind: "at", atMs },
      action: followUp ? "turn" : "message",
      prompt: followUp ? `Reminder (set earlier in this conversation): ${o.text}` : o.text,
      // A follow-up turn runs in the conversation's own session, with its history.
      sessionKey: ctx.sessionKey,
      ...(options.canDeliver(channel) ? { deliver: { channel, account, peer, ...(ctx.thread !== undefined ? { thread: ctx.thread } : {}) } } : {}),
      // A reminder that fell due while the gateway was down is still delivered, late.
      missed: "run_once",
      source: "runtime",
      createdAt: t,
      owner: ctx.sessionKey,
    };
    if (job.deliver === undefined && !followUp) return err(`reminders can be delivered on messaging channels only, not in a ${channel} session; use follow_up`);
    await scheduler.add(job);
    return ok({ id: job.id, at: new Date(atMs).toISOString(), follow_up: followUp });
  }
}
