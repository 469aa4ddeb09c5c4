/**
 * The configuration of scheduled work: `[[cron]]` jobs and `[agents.heartbeat]` (docs/automation.md).
 * Shapes are checked here, at load time (`exoclaw config validate` reports a bad cron expression
 * or time zone); the automation layer turns them into schedules.
 */
import { Cron } from "croner";
import * as z from "zod";
import { DURATION_HINT, parseDuration } from "../util/index.js";

/** A duration of at least one second (`every`). */
const interval = z.lazy(() =>
  z.string({ error: `must be a duration string: ${DURATION_HINT}` }).refine((v) => (parseDuration(v) ?? 0) >= 1000, `must be ${DURATION_HINT}, at least 1s`),
);

/** An IANA time zone name. */
const tz = z.lazy(() =>
  z.string().refine((v) => {
    try {
      new Intl.DateTimeFormat("en-US", { timeZone: v });
      return true;
    } catch {
      return false;
    }
  }, "must be an IANA time zone name such as UTC or Europe/Berlin"),
);

/** A cron expression croner accepts (5 fields, or 6 with seconds first). */
const cronExpr = z.lazy(() =>
  z.string().superRefine((v, ctx) => {
    try {
      new Cron(v, { paused: true });
    } catch (err) {
      ctx.addIssue({ code: "custom", message: `is not a valid cron expression: ${(err as Error).message}` });
    }
  }),
);

/** `deliver = { channel, account?, peer, thread? }`: where a job's reply is sent. */
export const deliverySchema = z.lazy(() =>
  z.strictObject({
    channel: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, "must be a configured channel name"),
    account: z.string().min(1).optional(),
    peer: z.string().min(1),
    thread: z.string().min(1).optional(),
  }),
);

const MAX_PROMPT = 16 * 1024;

/** One `[[cron]]` job. */
export const cronJobSchema = z.lazy(() =>
  z
    .strictObject({
      id: z.string().regex(/^[A-Za-z0-9_.-]{1,96}$/, "job ids may use letters, digits, _ . and - (1-96 characters)"),
      agent: z.string().min(1).optional(),
      cron: cronExpr.optional(),
      tz: tz.optional(),
      every: interval.optional(),
      at: z
        .string()
        .refine((v) => Number.isFinite(Date.parse(v)), "must be an ISO 8601 instant such as 2026-12-24T18:00:00Z")
        .optional(),
      prompt: z.string().min(1).max(MAX_PROMPT),
      session: z.string().min(1).optional(),
      deliver: deliverySchema.optional(),
      missed: z.enum(["skip", "run_once"], { error: 'must be "skip" or "run_once"' }).optional(),
    })
    .refine((j) => [j.cron, j.every, j.at].filter((v) => v !== undefined).length === 1, { message: "set exactly one of cron, every or at", path: ["cron"] })
    .refine((j) => j.tz === undefined || j.cron !== undefined, { message: "tz applies to cron expressions only", path: ["tz"] }),
);

/** `[agents.heartbeat]`: a periodic turn with a standing prompt. */
export const heartbeatSchema = z.lazy(() =>
  z.strictObject({
    every: interval,
    prompt: z.string().min(1).max(MAX_PROMPT).optional(),
    deliver: deliverySchema.optional(),
  }),
);

/** Where a job's reply goes (`deliver`); `account` defaults to `default`. */
export interface DeliveryConfig {
  channel: string;
  account: string;
  peer: string;
  thread?: string;
}

/** One `[[cron]]` job as loaded. Exactly one of `cron`, `every`, `at` is set. */
export interface CronJobConfig {
  id: string;
  /** The agent whose turn runs; the default agent when the file names none. */
  agent: string;
  cron?: string;
  /** Time zone of `cron`; default UTC. */
  tz?: string;
  /** Interval as written (`"30m"`). */
  every?: string;
  /** ISO 8601 instant. */
  at?: string;
  prompt: string;
  /** The session the turn runs in; default the job's own (`agent:<agent>:cron:default:<id>`). */
  session?: string;
  deliver?: DeliveryConfig;
  missed: "skip" | "run_once";
}

/** `[agents.heartbeat]` as loaded. */
export interface HeartbeatConfig {
  /** Interval as written (`"30m"`). */
  every: string;
  /** The standing prompt; default {@link DEFAULT_HEARTBEAT_PROMPT}. */
  prompt: string;
  deliver?: DeliveryConfig;
}

/** The heartbeat's prompt when the file gives none (names the no-reply answer). */
export const DEFAULT_HEARTBEAT_PROMPT =
  "Heartbeat: this is a scheduled check, not a message from a person. If something needs the user's attention, write the message to send them. If nothing does, answer exactly NO_REPLY and nothing else.";

const toDelivery = (d: z.infer<typeof deliverySchema>): DeliveryConfig => ({
  channel: d.channel,
  account: d.account ?? "default",
  peer: d.peer,
  ...(d.thread !== undefined ? { thread: d.thread } : {}),
});

/** `[[cron]]` as loaded; `defaultAgent` fills a job without `agent`. */
export function toCronJobs(jobs: z.infer<typeof cronJobSchema>[] | undefined, defaultAgent: string): CronJobConfig[] {
  return (jobs ?? []).map((j) => ({
    id: j.id,
    agent: j.agent ?? defaultAgent,
    ...(j.cron !== undefined ? { cron: j.cron } : {}),
    ...(j.tz !== undefined ? { tz: j.tz } : {}),
    ...(j.every !== undefined ? { every: j.every } : {}),
    ...(j.at !== undefined ? { at: j.at } : {}),
    prompt: j.prompt,
    ...(j.session !== undefined ? { session: j.session } : {}),
    ...(j.deliver !== undefined ? { deliver: toDelivery(j.deliver) } : {}),
    missed: j.missed ?? "skip",
  }));
}

/** `[agents.heartbeat]` as loaded. */
export function toHeartbeat(h: z.infer<typeof heartbeatSchema> | undefined): HeartbeatConfig | undefined {
  if (h === undefined) return undefined;
  return { every: h.every, prompt: h.prompt ?? DEFAULT_HEARTBEAT_PROMPT, ...(h.deliver !== undefined ? { deliver: toDelivery(h.deliver) } : {}) };
}
