/**
 * The scheduler: one timer for the earliest due job; each due slot is claimed (one gateway per
 * slot with a bus), marked in flight (durably), run as an agent turn whose idempotency key names
 * the slot, and its reply delivered; then the slot is recorded as done. A crash mid-run leaves
 * the slot in flight: at the next start it is run again under the same key, so the runtime
 * answers with the finished turn's outcome (no second model call) or waits for the recovered
 * turn, and the reply goes out. Missed slots after downtime follow the job's `missed` policy.
 */
import type { Logger } from "pino";
import { errorMessage } from "../util/index.js";
import type { RunClaim } from "./claim.js";
import type { DeliveryTarget, Job, JobState } from "./job.js";
import { NO_REPLY, runKey } from "./job.js";
import type { JobStore, StoredJobs } from "./job-store.js";
import { latestDueSlot, nextSlot } from "./schedule.js";

/** One turn a job (or a flow, flows.ts) asks for (what `AgentRuntime.run` takes). */
export interface ScheduledTurn {
  agentId: string;
  sessionKey: string;
  content: string;
  idempotencyKey: string;
  /** Marks the message in the session log: `cron`, `heartbeat`, `reminder` or `flow`. */
  channel: string;
  account: string;
  peer: string;
}

/** How a run ended, for metrics (`exoclaw_scheduled_runs_total{kind,outcome}`) and logs. */
export type RunOutcome = "delivered" | "silent" | "ran" | "skipped" | "claimed_elsewhere" | "failed";

/** Options of {@link Scheduler}. */
export interface SchedulerOptions {
  /** Jobs from the configuration (`[[cron]]`, heartbeats): run, never stored, never removed by RPC. */
  configJobs: Job[];
  store: JobStore;
  claim: RunClaim;
  /** Runs a turn and resolves with its reply text. @throws the turn's failure */
  runTurn(turn: ScheduledTurn): Promise<{ text: string }>;
  /** Sends `text` to `job.deliver` (the agent's outbound allowlist applies). @throws when refused or the send fails */
  deliver(job: Job & { deliver: DeliveryTarget }, text: string): Promise<void>;
  logger: Logger;
  /** Each run's outcome (metrics); must not throw. */
  onRun?(job: Job, outcome: RunOutcome): void;
  /** The clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
}

/** A job as `cron.list` shows it. */
export interface JobView {
  job: Job;
  state: JobState;
  /** The next slot, ms since the epoch; absent when none is left. */
  next?: number;
  /** A run of this job is going on now. */
  running: boolean;
}

/** Longest single timer, ms (Node's limit is 2^31 - 1; a farther slot is re-armed on the way). */
const MAX_TIMER_MS = 2_147_000_000;

/** Runs scheduled jobs (see the file comment). Not thread-safe across processes without a {@link RunClaim}. */
export class Scheduler {
  private readonly jobs = new Map<string, Job>();
  private state: Record<string, JobState> = {};
  private readonly next = new Map<string, number>();
  private readonly running = new Map<string, Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  private readonly now: () => number;

  constructor(private readonly options: SchedulerOptions) {
    this.now = options.now ?? Date.now;
  }

  /**
   * Loads stored jobs and state, resumes runs a crash left in flight, applies each job's missed
   * policy, and arms the timer.
   * @throws Error when the jobs file cannot be read (named in the message)
   */
  async start(): Promise<void> {
    const stored = await this.options.store.load();
    // What the file holds, to skip writing it back unchanged (below).
    const loaded = JSON.stringify(stored);
    for (const job of this.options.configJobs) this.jobs.set(job.id, job);
    for (const job of stored.jobs) {
      if (this.jobs.has(job.id)) {
        this.options.logger.warn({ job: job.id }, "a stored scheduled job has the id of a configured one; the configured job wins");
        continue;
      }
      this.jobs.set(job.id, { ...job, source: "runtime" });
    }
    this.state = stored.state;
    this.started = true;
    const now = this.now();
    const catchUp: [Job, number][] = [];
    for (const job of this.jobs.values()) {
      const st = this.stateOf(job.id);
      if (st.inFlight !== undefined) {
        catchUp.push([job, st.inFlight]);
        continue;
      }
      const due = latestDueSlot(job.schedule, st.lastSlot ?? (job.source === "runtime" ? job.createdAt - 1 : now), now);
      if (due !== undefined) {
        if (job.missed === "run_once") catchUp.push([job, due]);
        else {
          st.lastSlot = due;
          this.options.onRun?.(job, "skipped");
          // Heartbeats are meant to be quiet: a skipped one is only counted.
          if (job.kind !== "heartbeat")
            this.options.logger.info(
              { job: job.id, slot: new Date(due).toISOString() },
              "scheduled run missed while the gateway was down: skipped (missed = skip)",
            );
        }
      } else if (st.lastSlot === undefined) {
        st.lastSlot = now;
      }
    }
    // Unchanged (no jobs, or nothing due or planned anew; a missing file reads as empty): not
    // written again. The write is an fsync'ed replace, six thread-pool round trips before the
    // gateway is ready (docs/architecture.md, "Start-up on an existing store").
    if (JSON.stringify(this.content()) !== loaded) await this.persist();
    for (const [job, slot] of catchUp) this.launch(job, slot, true);
    for (const job of this.jobs.values()) this.plan(job);
    this.arm();
  }

  /** Stops the timer and waits for runs in progress. Idempotent. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.running.values()]);
  }

  /**
   * Adds (or replaces) a runtime job and stores it before resolving.
   * @throws Error when the id belongs to a configured job, or the jobs file cannot be written
   */
  async add(job: Job): Promise<JobView> {
    const existing = this.jobs.get(job.id);
    if (existing?.source === "config") throw new Error(`scheduled job "${job.id}" comes from the configuration file; change it there`);
    this.jobs.set(job.id, { ...job, source: "runtime" });
    this.state[job.id] = { runs: 0, lastSlot: job.createdAt - 1 };
    await this.persist();
    this.plan(this.jobs.get(job.id)!);
    this.arm();
    return this.view(this.jobs.get(job.id)!);
  }

  /**
   * Removes a runtime job (a run in progress finishes).
   * @returns false when no such job exists
   * @throws Error when it is a configured job, or the jobs file cannot be written
   */
  async remove(id: string): Promise<boolean> {
    const job = this.jobs.get(id);
    if (job === undefined) return false;
    if (job.source === "config") throw new Error(`scheduled job "${id}" comes from the configuration file; remove it there`);
    this.jobs.delete(id);
    delete this.state[id];
    this.next.delete(id);
    await this.persist();
    this.arm();
    return true;
  }

  /** Every job with its state and next slot, sorted by id. */
  list(filter?: (job: Job) => boolean): JobView[] {
    return [...this.jobs.values()]
      .filter((j) => filter?.(j) ?? true)
      .sort((a, b) => a.id.localeCompare(b.id))
      .map((j) => this.view(j));
  }

  /** One job's view, or undefined. */
  get(id: string): JobView | undefined {
    const job = this.jobs.get(id);
    return job === undefined ? undefined : this.view(job);
  }

  /**
   * Runs a job now, outside its schedule (its slot is the current time), and waits for the run.
   * @returns the run's outcome
   * @throws Error when no such job exists or it is running already
   */
  async runNow(id: string): Promise<RunOutcome> {
    const job = this.jobs.get(id);
    if (job === undefined) throw new Error(`no scheduled job "${id}"`);
    if (this.running.has(id)) throw new Error(`scheduled job "${id}" is running now`);
    let outcome: RunOutcome = "failed";
    const run = this.execute(job, this.now(), false, (o) => (outcome = o)).finally(() => this.running.delete(id));
    this.running.set(id, run);
    await run;
    return outcome;
  }

  private view(job: Job): JobView {
    const next = this.next.get(job.id);
    return { job, state: this.stateOf(job.id), ...(next !== undefined ? { next } : {}), running: this.running.has(job.id) };
  }

  private stateOf(id: string): JobState {
    let st = this.state[id];
    if (st === undefined) this.state[id] = st = { runs: 0 };
    return st;
  }

  /** Computes a job's next slot after its last one (and after now: slots are never run early or backdated). */
  private plan(job: Job): void {
    const st = this.stateOf(job.id);
    const after = Math.max(st.lastSlot ?? -Infinity, st.inFlight ?? -Infinity, this.now());
    const slot = nextSlot(job.schedule, after);
    if (slot === undefined) this.next.delete(job.id);
    else this.next.set(job.id, slot);
  }

  private arm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.stopped || !this.started) return;
    let earliest = Infinity;
    for (const slot of this.next.values()) earliest = Math.min(earliest, slot);
    if (earliest === Infinity) return;
    const delay = Math.min(Math.max(0, earliest - this.now()), MAX_TIMER_MS);
    this.timer = setTimeout(() => this.tick(), delay);
    this.timer.unref?.();
  }

  private tick(): void {
    this.timer = undefined;
    const now = this.now();
    for (const [id, slot] of [...this.next]) {
      if (slot > now) continue;
      const job = this.jobs.get(id)!;
      this.next.delete(id);
      if (this.running.has(id)) {
        // The previous run is still going: this slot is skipped, not queued (no pile-up).
        this.stateOf(id).lastSlot = slot;
        this.options.onRun?.(job, "skipped");
        if (job.kind !== "heartbeat")
          this.options.logger.warn({ job: id, slot: new Date(slot).toISOString() }, "scheduled run skipped: the previous run of this job is still going");
        this.plan(job);
        continue;
      }
      this.launch(job, slot, false);
    }
    this.arm();
  }

  private launch(job: Job, slot: number, resumed: boolean): void {
    const run = this.execute(job, slot, resumed, () => {}).finally(() => {
      this.running.delete(job.id);
      if (!this.stopped && this.jobs.has(job.id)) {
        this.plan(job);
        this.arm();
      }
    });
    this.running.set(job.id, run);
    // The next slot stays planned while this run goes on: if it comes due first, it is skipped
    // (and counted), not queued.
    const next = nextSlot(job.schedule, Math.max(slot, this.now()));
    if (next !== undefined) this.next.set(job.id, next);
  }

  /** One run of one slot. Never throws: failures are logged, counted and kept in the job's state. */
  private async execute(job: Job, slot: number, resumed: boolean, report: (o: RunOutcome) => void): Promise<void> {
    const { logger } = this.options;
    const st = this.stateOf(job.id);
    let interrupted = false;
    const outcome = (o: RunOutcome) => {
      report(o);
      this.options.onRun?.(job, o);
    };
    try {
      if (!resumed) {
        let mine: boolean;
        try {
          mine = await this.options.claim.claim(job, slot);
        } catch (err) {
          st.lastSlot = slot;
          st.lastError = `could not claim the run: ${errorMessage(err)}`;
          outcome("failed");
          logger.warn(
            { job: job.id, slot: new Date(slot).toISOString(), error: errorMessage(err) },
            "scheduled run not started: the cluster claim failed (another gateway may run it)",
          );
          await this.persist();
          return;
        }
        if (!mine) {
          st.lastSlot = slot;
          outcome("claimed_elsewhere");
          return;
        }
      }
      st.inFlight = slot;
      await this.persist();
      let text: string;
      if (job.action === "message") text = job.prompt;
      else {
        const result = await this.options.runTurn({
          agentId: job.agent,
          sessionKey: job.sessionKey,
          content: job.prompt,
          idempotencyKey: runKey(job, slot),
          channel: job.kind,
          account: "default",
          peer: job.id,
        });
        text = result.text;
      }
      const silent = text.trim() === NO_REPLY || text.trim() === "";
      if (!silent && job.deliver !== undefined) await this.options.deliver(job as Job & { deliver: DeliveryTarget }, text);
      st.runs++;
      delete st.lastError;
      outcome(silent ? "silent" : job.deliver !== undefined ? "delivered" : "ran");
      if (!silent && job.kind !== "heartbeat") logger.info({ job: job.id, kind: job.kind, slot: new Date(slot).toISOString() }, "scheduled run done");
    } catch (err) {
      st.lastError = errorMessage(err);
      // Cut by the gateway's shutdown: the slot stays in flight and is run at the next start.
      if (this.stopped) interrupted = true;
      outcome("failed");
      logger.warn({ job: job.id, kind: job.kind, slot: new Date(slot).toISOString(), error: st.lastError }, "scheduled run failed");
    } finally {
      if (st.inFlight === slot && !interrupted) delete st.inFlight;
      st.lastSlot = Math.max(st.lastSlot ?? slot, slot);
      // A one-shot job (a reminder) is done after its run.
      if (job.schedule.kind === "at" && job.source === "runtime" && nextSlot(job.schedule, slot) === undefined) {
        this.jobs.delete(job.id);
        delete this.state[job.id];
        this.next.delete(job.id);
      }
      await this.persist().catch((err: unknown) => logger.warn({ job: job.id, error: errorMessage(err) }, "cannot record a scheduled run in the jobs file"));
    }
  }

  /** What the jobs file holds for the current jobs and state. */
  private content(): StoredJobs {
    return {
      version: 1,
      jobs: [...this.jobs.values()].filter((j) => j.source === "runtime"),
      state: Object.fromEntries(Object.entries(this.state).filter(([id]) => this.jobs.has(id))),
    };
  }

  private persist(): Promise<void> {
    return this.options.store.save(this.content());
  }
}
