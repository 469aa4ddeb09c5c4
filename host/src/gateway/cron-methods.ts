/**
 * The `cron.*` methods (docs/protocol.md): `cron.list`, `cron.add`, `cron.remove`, `cron.run`;
 * and `flows.list`, `flows.get`, `flows.cancel`, `flows.resume`.
 * Scheduling turns that message peers is an operator's act: every method needs scope `admin`,
 * and each change is logged with the client's identity.
 */
import type { Logger } from "pino";
import {
  defaultJobSession,
  FlowError,
  type Flow,
  type FlowService,
  describeSchedule,
  parseSchedule,
  ScheduleError,
  type Job,
  type JobView,
  type RunOutcome,
  type Scheduler,
} from "../automation/index.js";
import { CronAddSchema, CronIdSchema, ErrorCode, FlowIdSchema, NoParamsSchema, parseParams, RpcError } from "../protocol/index.js";
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
  /** The running flows (`flows.*`); absent = those methods do not exist. */
  flows?: () => FlowService | undefined;
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

/** A flow as the wire shows it: instants as ISO 8601, no secret hash. */
export interface FlowInfo {
  id: string;
  agent: string;
  owner: string;
  title: string;
  correlationId: string;
  status: Flow["status"];
  step: string;
  state: unknown;
  waitingOn: "timer" | "event" | "person" | null;
  waitUntil: string | null;
  horizon: string;
  createdAt: string;
  updatedAt: string;
  result: unknown;
  error: string | null;
}

/** The wire form of a flow. */
export function flowInfo(f: Flow): FlowInfo {
  return {
    id: f.id,
    agent: f.agent,
    owner: f.owner,
    title: f.title,
    correlationId: f.correlationId,
    status: f.status,
    step: f.step,
    state: f.state,
    waitingOn: f.wait?.on ?? null,
    waitUntil: f.wait?.on === "timer" ? new Date(f.wait.untilMs).toISOString() : null,
    horizon: new Date(f.horizonAt).toISOString(),
    createdAt: new Date(f.createdAt).toISOString(),
    updatedAt: new Date(f.updatedAt).toISOString(),
    result: f.result ?? null,
    error: f.error ?? null,
  };
}

/** Adds `flows.list`, `flows.get`, `flows.cancel`, `flows.resume` (scope admin) to `methods`. */
export function registerFlowMethods(methods: Map<string, MethodHandler>, deps: Required<Pick<CronMethodDeps, "flows">> & Pick<CronMethodDeps, "logger">): void {
  const flows = (): FlowService => {
    const f = deps.flows();
    if (f === undefined) throw new RpcError(ErrorCode.InternalError, "flows are not running yet");
    return f;
  };
  const one = (params: unknown): string => parseParams(FlowIdSchema, params).id;
  methods.set("flows.list", async (params, ctx): Promise<{ flows: FlowInfo[] }> => {
    requireScope(ctx.identity, "admin", "flows.list");
    parseParams(NoParamsSchema, params);
    return { flows: flows().list().map(flowInfo) };
  });
  methods.set("flows.get", async (params, ctx): Promise<{ flow: FlowInfo }> => {
    requireScope(ctx.identity, "admin", "flows.get");
    const id = one(params);
    const f = flows().get(id);
    if (f === undefined) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: no flow "${id}"`);
    return { flow: flowInfo(f) };
  });
  for (const [method, act] of [
    ["flows.cancel", (s: FlowService, id: string) => s.update(id, null, { status: "cancelled" })],
    ["flows.resume", (s: FlowService, id: string) => s.resumeNow(id)],
  ] as const) {
    methods.set(method, async (params, ctx): Promise<{ flow: FlowInfo }> => {
      requireScope(ctx.identity, "admin", method);
      const id = one(params);
      try {
        const f = await act(flows(), id);
        deps.logger.info({ flow: id, client: ctx.identity.account }, method);
        return { flow: flowInfo(f) };
      } catch (err) {
        if (err instanceof FlowError) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${err.message}`);
        throw err;
      }
    });
  }
}
