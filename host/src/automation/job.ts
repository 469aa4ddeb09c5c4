/**
 * Scheduled jobs: what runs ({@link Job}), where its reply goes, and what is remembered between
 * runs ({@link JobState}). Three kinds share one scheduler: `cron` jobs (from `[[cron]]` or the
 * `cron.add` RPC), per-agent `heartbeat`s, and `reminder`s set by the built-in `remind` tool.
 */
import { formatSessionKey } from "../store/index.js";
import type { Schedule } from "./schedule.js";

/** What kind of job: marks its turns in the session log (the message's channel) and in metrics. */
export type JobKind = "cron" | "heartbeat" | "reminder";

/** A channel peer a job's reply is sent to (the agent's outbound allowlist applies). */
export interface DeliveryTarget {
  channel: string;
  account: string;
  peer: string;
  thread?: string;
}

/**
 * What to do about runs that fell due while no gateway was running: `skip` them (the next run is
 * the next slot from now) or `run_once` (one run at start-up for the latest missed slot).
 */
export type MissedPolicy = "skip" | "run_once";

/** One scheduled job. */
export interface Job {
  /** Unique among jobs, `[A-Za-z0-9_.-]{1,96}`; names the job in RPC, CLI, logs and idempotency keys. */
  id: string;
  kind: JobKind;
  /** The agent whose turn runs (and whose outbound allowlist and budgets apply). */
  agent: string;
  schedule: Schedule;
  /** `turn`: run a turn with `prompt` as the user message and send its reply; `message`: send `prompt` as is. */
  action: "turn" | "message";
  /** The user message of the turn (`turn`), or the text sent (`message`). At most 16 KiB characters. */
  prompt: string;
  /** The session the turn runs in (`agent:<agent>:<channel>:<account>:<peer>`). */
  sessionKey: string;
  /** Where the reply goes; none: the turn only runs (its reply stays in the session log). */
  deliver?: DeliveryTarget;
  missed: MissedPolicy;
  /** `config`: from the configuration file (not stored, not removable by RPC); `runtime`: stored in the state dir. */
  source: "config" | "runtime";
  /** When the job was created, ms since the epoch (the grid origin of an interval). */
  createdAt: number;
  /** A reminder's owner: the session it was set from (only that conversation lists and cancels it). */
  owner?: string;
}

/** What the scheduler remembers of a job between runs and restarts. */
export interface JobState {
  /** The last slot that ran (or was skipped, or claimed by another gateway), ms since the epoch. */
  lastSlot?: number;
  /** A slot whose run started and did not finish (a crash): resumed at start-up under the same key. */
  inFlight?: number;
  /** Runs this job made (on this gateway). */
  runs: number;
  /** The last run's failure, for `cron.list`. */
  lastError?: string;
}

/**
 * The reply a `turn` job's model gives to say "nothing to report": when the reply (trimmed) is
 * exactly this, nothing is sent (heartbeats cost nothing to the peer when idle). Documented in
 * docs/automation.md and in the heartbeat's default prompt.
 */
export const NO_REPLY = "NO_REPLY";

/** Job ids: letters, digits and `_ . -`, 1-96 characters. */
export const JOB_ID_RE = /^[A-Za-z0-9_.-]{1,96}$/;

/** Longest prompt accepted, characters. */
export const MAX_PROMPT_CHARS = 16 * 1024;

/** The idempotency key of one run: the same slot of the same job never runs a second turn. */
export function runKey(job: Pick<Job, "kind" | "id">, slot: number): string {
  return `${job.kind}:${job.id}:${slot}`;
}

/** The session a job runs in when none is given: its own, `agent:<agent>:<kind>:default:<id>`. */
export function defaultJobSession(agent: string, kind: JobKind, id: string): string {
  return formatSessionKey({ agent, channel: kind, account: "default", peer: id });
}
