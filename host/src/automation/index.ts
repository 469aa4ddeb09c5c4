/**
 * Scheduled work (docs/automation.md): cron jobs, heartbeats and reminders, run as agent turns
 * whose replies go to channel peers. Above the channels in the import order (it delivers through
 * them), below the gateway (which serves `cron.*` and starts it).
 */
export { Automation, configJobs } from "./service.js";
export type { AutomationOptions, AutomationDeps } from "./service.js";
export { Scheduler } from "./scheduler.js";
export type { SchedulerOptions, ScheduledTurn, RunOutcome, JobView } from "./scheduler.js";
export { FileJobStore, MemoryJobStore } from "./job-store.js";
export type { JobStore, StoredJobs } from "./job-store.js";
export { LOCAL_CLAIM, busClaim } from "./claim.js";
export type { RunClaim } from "./claim.js";
export { NO_REPLY, JOB_ID_RE, MAX_PROMPT_CHARS, runKey, defaultJobSession } from "./job.js";
export type { Job, JobKind, JobState, DeliveryTarget, MissedPolicy } from "./job.js";
export { parseSchedule, nextSlot, latestDueSlot, describeSchedule, ScheduleError, MIN_INTERVAL_MS } from "./schedule.js";
export type { Schedule, ScheduleInput } from "./schedule.js";
export { remindTool, REMIND, REMIND_SPEC, MAX_REMINDERS_PER_SESSION, MAX_REMINDER_HORIZON_MS } from "./remind-tool.js";
export type { RemindToolOptions } from "./remind-tool.js";
export { FlowService, FlowError, MAX_FLOW_STATE_BYTES, DEFAULT_FLOW_HORIZON_MS, MAX_FLOW_HORIZON_MS, MAX_ACTIVE_FLOWS_PER_SESSION } from "./flows.js";
export type { Flow, FlowStatus, FlowWait, FlowServiceOptions } from "./flows.js";
export { flowTool, FLOW, FLOW_SPEC } from "./flow-tool.js";
export type { FlowToolOptions } from "./flow-tool.js";
