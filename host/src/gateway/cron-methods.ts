/**
 * The `cron.*` methods (docs/protocol.md): `cron.list`, `cron.add`, `cron.remove`, `cron.run`.
 * Scheduling turns that message peers is an operator's act: every method needs scope `admin`,
 * and each change is logged with the client's identity.
 */
import type { Logger } from "pino";
import {
  defaultJobSession,
  describeSchedule,
  parseSchedule,
  ScheduleError,
  type Job,
  type JobView,
  type RunOutcome,
  type Scheduler,
} from "../automation/index.js";
import { CronAddSchema, CronIdSchema, ErrorCode, NoParamsSchema, parseParams, RpcError } from "../protocol/index.js";
import { parseSessionKey } from "../store/index.js";
import { requireScope } from "./identity.js";
import type { MethodHandler } from "./rpc.js";

/** What the `cron.*` methods reach. */
export interface CronMethodDeps {
  /** The running scheduler, undefined before start-up finished (the methods answer -32603 then). */
  scheduler: () => Scheduler | undefined;
  /** Agent ids known now (a job for another agent is refused). */
  agentIds: () => readonly string[];
  /** The agent a job without `agent` runs as. */
  defaultAgent: () => string;
  logger: Logger;
}

/** A job as the wire shows it: schedule as written, instants as ISO 8601. */
export interface CronJobInfo {
  id: string;
  kind: Job["kind"];
  agent: string;
  schedule: ReturnType<typeof describeSchedule>;
  action: Job["action"];
  prompt: string;
  sessionKey: string;
  deliver: Job["deliver"] | null;
  missed: Job["missed"];
  source: Job["source"];
  next: string | null;
  lastRun: string | null;
  runs: number;
  lastError: string | null;
  running: boolean;
}

/** The wire form of a job. */
export function jobInfo(v: JobView): CronJobInfo {
  const { job, state } = v;
  return {
    id: job.id,
    kind: job.kind,
    agent: job.agent,
    schedule: describeSchedule(job.schedule),
    action: job.action,
    prompt: job.prompt,
    sessionKey: job.sessionKey,
    deliver: job.deliver ?? null,
    missed: job.missed,
    source: job.source,
    next: v.next !== undefined ? new Date(v.next).toISOString() : null,
    lastRun: state.lastSlot !== undefined && state.runs > 0 ? new Date(state.lastSlot).toISOString() : null,
    runs: state.runs,
    lastError: state.lastError ?? null,
    running: v.running,
  };
}

/** Adds the `cron.*` methods to `methods`. */
export function registerCronMethods(methods: Map<string, MethodHandler>, deps: CronMethodDeps): void {
  const scheduler = (): Scheduler => {
    const s = deps.scheduler();
    if (s === undefined) throw new RpcError(ErrorCode.InternalError, "the scheduler is not running yet");
    return s;
  };

  methods.set("cron.list", async (params, ctx): Promise<{ jobs: CronJobInfo[] }> => {
    requireScope(ctx.identity, "admin", "cron.list");
    parseParams(NoParamsSchema, params);
    return { jobs: scheduler().list().map(jobInfo) };
  });

  methods.set("cron.add", async (params, ctx): Promise<{ job: CronJobInfo }> => {
    requireScope(ctx.identity, "admin", "cron.add");
    const p = parseParams(CronAddSchema, params);
    const agent = p.agent ?? deps.defaultAgent();
    if (!deps.agentIds().includes(agent)) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: agent "${agent}" is not a configured agent`);
    const now = Date.now();
    let schedule;
    try {
      schedule = parseSchedule(
        {
          ...(p.cron !== undefined ? { cron: p.cron } : {}),
          ...(p.tz !== undefined ? { tz: p.tz } : {}),
          ...(p.every !== undefined ? { every: p.every } : {}),
          ...(p.at !== undefined ? { at: p.at } : {}),
        },
        now,
      );
    } catch (err) {
      if (err instanceof ScheduleError) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${err.field}: ${err.message}`);
      throw err;
    }
    if (p.session !== undefined) {
      try {
        if (parseSessionKey(p.session).agent !== agent)
          throw new RpcError(ErrorCode.InvalidParams, `Invalid params: session ${p.session} belongs to another agent than "${agent}"`);
      } catch (err) {
        if (err instanceof RpcError) throw err;
        throw new RpcError(ErrorCode.InvalidParams, `Invalid params: session: ${(err as Error).message}`);
      }
    }
    const job: Job = {
      id: p.id,
      kind: "cron",
      agent,
      schedule,
      action: "turn",
      prompt: p.prompt,
      sessionKey: p.session ?? defaultJobSession(agent, "cron", p.id),
      ...(p.deliver !== undefined ? { deliver: { ...p.deliver, account: p.deliver.account ?? "default" } } : {}),
      missed: p.missed ?? "skip",
      source: "runtime",
      createdAt: now,
    };
    let view: JobView;
    try {
      view = await scheduler().add(job);
    } catch (err) {
      throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${(err as Error).message}`);
    }
    deps.logger.info({ job: job.id, agent, schedule: describeSchedule(schedule), client: ctx.identity.account }, "cron.add");
    return { job: jobInfo(view) };
  });

  methods.set("cron.remove", async (params, ctx): Promise<{ removed: boolean }> => {
    requireScope(ctx.identity, "admin", "cron.remove");
    const p = parseParams(CronIdSchema, params);
    let removed: boolean;
    try {
      removed = await scheduler().remove(p.id);
    } catch (err) {
      throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${(err as Error).message}`);
    }
    deps.logger.info({ job: p.id, removed, client: ctx.identity.account }, "cron.remove");
    return { removed };
  });

  // The job as it is after the run; null when the run ended it (a one-shot job is removed).
  methods.set("cron.run", async (params, ctx): Promise<{ outcome: RunOutcome; job: CronJobInfo | null }> => {
    requireScope(ctx.identity, "admin", "cron.run");
    const p = parseParams(CronIdSchema, params);
    const s = scheduler();
    if (s.get(p.id) === undefined) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: no scheduled job "${p.id}"`);
    deps.logger.info({ job: p.id, client: ctx.identity.account }, "cron.run");
    let outcome: RunOutcome;
    try {
      outcome = await s.runNow(p.id);
    } catch (err) {
      throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${(err as Error).message}`);
    }
    const view = s.get(p.id);
    return { outcome, job: view !== undefined ? jobInfo(view) : null };
  });
}
