/**
 * Where scheduled jobs live between restarts: `<stateDir>/automation/jobs.json` (mode 0600,
 * replaced atomically with an fsync on every change), holding the jobs created at runtime
 * (`cron.add`, reminders) and every job's {@link JobState} (last slot, a run in flight). Jobs
 * from the configuration file are not stored: the file is their source; only their state is.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { writeFileAtomic } from "../util/index.js";
import type { Job, JobState } from "./job.js";

/** The file's content. */
export interface StoredJobs {
  version: 1;
  /** Jobs created at runtime (`source: "runtime"`). */
  jobs: Job[];
  /** State of every job, config jobs included, by job id. */
  state: Record<string, JobState>;
}

/** Persistence of the scheduler's jobs and state. */
export interface JobStore {
  /** @throws Error naming the file when it exists but cannot be read or parsed */
  load(): Promise<StoredJobs>;
  /** Replaces the stored content (durably). @throws Error naming the file when it cannot be written */
  save(content: StoredJobs): Promise<void>;
}

/** {@link JobStore} on a JSON file in the state dir. */
export class FileJobStore implements JobStore {
  /** Where the jobs of the state dir `stateDir` are kept. */
  static pathFor(stateDir: string): string {
    return path.join(stateDir, "automation", "jobs.json");
  }

  /** Saves run one at a time, in call order (the last call's content wins). */
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly file: string) {}

  async load(): Promise<StoredJobs> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return { version: 1, jobs: [], state: {} };
      throw new Error(`cannot read the scheduled jobs ${this.file}: ${(err as Error).message}`);
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(
        `the scheduled jobs file ${this.file} is not valid JSON (${(err as Error).message}); fix or remove it (its runtime jobs and reminders are then lost)`,
      );
    }
    const o = parsed as Partial<StoredJobs> | null;
    if (o === null || typeof o !== "object" || o.version !== 1 || !Array.isArray(o.jobs) || typeof o.state !== "object" || o.state === null) {
      throw new Error(`the scheduled jobs file ${this.file} is not a version 1 jobs file ({"version":1,"jobs":[...],"state":{...}}); fix or remove it`);
    }
    return { version: 1, jobs: o.jobs, state: o.state };
  }

  save(content: StoredJobs): Promise<void> {
    const text = `${JSON.stringify(content, null, 1)}\n`;
    const next = this.chain.then(() => writeFileAtomic(this.file, text));
    this.chain = next.catch(() => {});
    return next;
  }
}

/** {@link JobStore} in memory (tests, and `memory` stores where nothing survives a restart anyway). */
export class MemoryJobStore implements JobStore {
  private content: StoredJobs = { version: 1, jobs: [], state: {} };

  async load(): Promise<StoredJobs> {
    return structuredClone(this.content);
  }

  async save(content: StoredJobs): Promise<void> {
    this.content = structuredClone(content);
  }
}
