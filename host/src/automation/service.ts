/**
 * The gateway's scheduled work, assembled: config jobs (`[[cron]]`, heartbeats) turned into
 * {@link Job}s, the {@link Scheduler} over the state dir's jobs file, the cluster claim when a bus
 * is configured, the `remind` host tool, and delivery through the channels under each agent's
 * outbound allowlist. Created before the agent runtime (which offers `remind`), started once the
 * channels run, stopped first at shutdown (no new scheduled turns while running ones drain).
 */
import type { Logger } from "pino";
import { compileOutboundAllowlist, type AgentRuntime, type HostTool, type OutboundPolicy, type OutboundSender } from "../agent/index.js";
import type { Bus } from "../bus/index.js";
import type { AgentConfig, CronJobConfig } from "../config/index.js";
import { parseSessionKey } from "../store/index.js";
import { busClaim, LOCAL_CLAIM } from "./claim.js";
import type { DeliveryTarget, Job } from "./job.js";
import { defaultJobSession } from "./job.js";
import { FileJobStore, type JobStore } from "./job-store.js";
import { flowTool } from "./flow-tool.js";
import { FlowService } from "./flows.js";
import { remindTool } from "./remind-tool.js";
import { parseSchedule, ScheduleError } from "./schedule.js";
import { Scheduler, type RunOutcome } from "./scheduler.js";

/** Options of {@link Automation}. */
export interface AutomationOptions {
  cron: readonly CronJobConfig[];
  agents: readonly AgentConfig[];
  /** The jobs file goes to `<stateDir>/automation/jobs.json`. */
  stateDir: string;
  logger: Logger;
  /** With a bus, each slot runs on one gateway of the cluster (see claim.ts). */
  bus?: Bus;
  /** Overrides the jobs file (tests). */
  store?: JobStore;
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
}

/** What {@link Automation.start} needs from the running gateway. */
export interface AutomationDeps {
  runtime: Pick<AgentRuntime, "run">;
  outbound: OutboundSender;
  /** Names of the configured channels (reminders are delivered only there). */
  channelNames: () => readonly string[];
  /** Each run's outcome, for metrics; must not throw. */
  onRun?: (kind: Job["kind"], outcome: RunOutcome) => void;
}

/**
 * Turns the configuration's `[[cron]]` jobs and agent heartbeats into jobs.
 * @throws ScheduleError (with the job named) for a schedule that cannot be used
 */
export function configJobs(cron: readonly CronJobConfig[], agents: readonly AgentConfig[]): Job[] {
  const jobs: Job[] = [];
  for (const c of cron) {
    let schedule;
    try {
      // Config intervals sit on a grid from the epoch: every gateway of a cluster (and every
      // restart) computes the same slots, which the cluster claim needs.
      schedule = parseSchedule(
        {
          ...(c.cron !== undefined ? { cron: c.cron } : {}),
          ...(c.tz !== undefined ? { tz: c.tz } : {}),
          ...(c.every !== undefined ? { every: c.every } : {}),
          ...(c.at !== undefined ? { at: c.at } : {}),
        },
        0,
      );
    } catch (err) {
      if (err instanceof ScheduleError) throw new ScheduleError(err.field, `cron job "${c.id}": ${err.field}: ${err.message}`);
      throw err;
    }
    jobs.push({
      id: c.id,
      kind: "cron",
      agent: c.agent,
      schedule,
      action: "turn",
      prompt: c.prompt,
      sessionKey: c.session ?? defaultJobSession(c.agent, "cron", c.id),
      ...(c.deliver !== undefined ? { deliver: c.deliver } : {}),
      missed: c.missed,
      source: "config",
      createdAt: 0,
    });
  }
  for (const a of agents) {
    if (a.heartbeat === undefined) continue;
    const id = `heartbeat-${a.id}`;
    jobs.push({
      id,
      kind: "heartbeat",
      agent: a.id,
      schedule: parseSchedule({ every: a.heartbeat.every }, 0),
      action: "turn",
      prompt: a.heartbeat.prompt,
      sessionKey: defaultJobSession(a.id, "heartbeat", a.id),
      ...(a.heartbeat.deliver !== undefined ? { deliver: a.heartbeat.deliver } : {}),
      missed: "skip",
      source: "config",
      createdAt: 0,
    });
  }
  return jobs;
}

/** Scheduled work of one gateway (see the file comment). */
export class Automation {
  /** Host tools to give the agent runtime (`remind`). */
  readonly tools: readonly HostTool[];
  private scheduler: Scheduler | undefined;
  private readonly policies: Map<string, OutboundPolicy>;
  private readonly jobs: Job[];

  /** @throws ScheduleError for a configured job whose schedule cannot be used; Error for a malformed outbound allowlist */
  constructor(private readonly options: AutomationOptions) {
    this.jobs = configJobs(options.cron, options.agents);
    this.policies = new Map(options.agents.map((a) => [a.id, compileOutboundAllowlist(a.outbound)]));
    let channels: () => readonly string[] = () => [];
    this.tools = [
      remindTool({
        scheduler: () => this.scheduler,
        canDeliver: (channel) => channels().includes(channel),
        ...(options.now !== undefined ? { now: options.now } : {}),
      }),
      flowTool({
        flows: () => this.flowService,
        canDeliver: (channel) => channels().includes(channel),
        ...(options.now !== undefined ? { now: options.now } : {}),
      }),
    ];
    this.bindChannels = (names) => (channels = names);
  }

  private readonly bindChannels: (names: () => readonly string[]) => void;

  private flowService: FlowService | undefined;

  /** The running flows (RPC, `POST /flows/<id>/events`), or undefined before {@link start}. */
  get flows(): FlowService | undefined {
    return this.flowService;
  }

  /** The running scheduler (RPC), or undefined before {@link start}. */
  get running(): Scheduler | undefined {
    return this.scheduler;
  }

  /**
   * Starts the scheduler: stored jobs load, runs a crash cut are resumed, missed runs follow
   * each job's policy. Warns about configured targets the agent's outbound allowlist refuses.
   * @throws Error when the jobs file cannot be read
   */
  async start(deps: AutomationDeps): Promise<void> {
    const { logger } = this.options;
    this.bindChannels(deps.channelNames);
    for (const job of this.jobs) {
      if (job.deliver !== undefined && !this.allowed(job, job.deliver)) {
        logger.warn(
          { job: job.id, agent: job.agent, target: job.deliver },
          "a scheduled job's target is not in its agent's outbound allowlist: its replies will be refused",
        );
      }
    }
    const scheduler = new Scheduler({
      configJobs: this.jobs,
      store: this.options.store ?? new FileJobStore(FileJobStore.pathFor(this.options.stateDir)),
      claim: this.options.bus !== undefined ? busClaim(this.options.bus) : LOCAL_CLAIM,
      logger,
      ...(this.options.now !== undefined ? { now: this.options.now } : {}),
      ...(deps.onRun !== undefined ? { onRun: (job: Job, outcome: RunOutcome) => deps.onRun!(job.kind, outcome) } : {}),
      runTurn: async (turn) => {
        const result = await deps.runtime.run(turn, () => {});
        return { text: result.text };
      },
      deliver: async (job, text) => {
        const target = job.deliver;
        if (!this.allowed(job, target)) {
          throw new Error(`${target.channel} peer ${JSON.stringify(target.peer)} is not in agent "${job.agent}"'s outbound allowlist`);
        }
        await deps.outbound.send({ ...target, content: text });
      },
    });
    await scheduler.start();
    this.scheduler = scheduler;
    const flows = new FlowService({
      file: FlowService.pathFor(this.options.stateDir),
      logger,
      ...(this.options.now !== undefined ? { now: this.options.now } : {}),
      runTurn: async (turn) => ({ text: (await deps.runtime.run(turn, () => {})).text }),
      // A flow's replies go to the conversation that started it (its own peer: always allowed).
      deliver: async (flow, text) => void (await deps.outbound.send({ ...flow.deliver, content: text })),
    });
    await flows.start();
    this.flowService = flows;
    logger.info({ jobs: this.jobs.length + scheduler.list((j) => j.source === "runtime").length }, "scheduler started");
  }

  /** Stops the scheduler and waits for runs in progress (their turns drain with the runtime). */
  async stop(): Promise<void> {
    await Promise.all([this.scheduler?.stop(), this.flowService?.stop()]);
  }

  /** A target is allowed when it is the job's own conversation or in the agent's outbound allowlist. */
  private allowed(job: Pick<Job, "agent" | "sessionKey">, target: DeliveryTarget): boolean {
    const own = parseSessionKey(job.sessionKey);
    if (own.channel === target.channel && own.account === target.account && own.peer === target.peer) return true;
    return this.policies.get(job.agent)?.allows(target.channel, target.peer) ?? false;
  }
}
