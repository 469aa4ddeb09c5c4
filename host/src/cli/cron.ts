/**
 * `exoclaw cron list|add|remove|run` and `exoclaw flow list|show|cancel|resume`: the running gateway's
 * scheduled jobs and flows through the `cron.*` and `flows.*`
 * methods (docs/protocol.md, docs/automation.md). Every subcommand needs scope admin (the
 * gateway token).
 */
import type { Command } from "commander";
import type { CronJobInfo, FlowInfo } from "../gateway/index.js";
import { withGateway } from "./gateway-client.js";
import type { CliIo } from "./io.js";
import { formatTable } from "./plugin.js";

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** The schedule as one cell: `cron 0 9 * * * (Europe/Berlin)`, `every 60s`, `at 2026-…`. */
function scheduleCell(s: CronJobInfo["schedule"]): string {
  if (s.cron !== undefined) return `cron ${s.cron}${s.tz !== undefined && s.tz !== "UTC" ? ` (${s.tz})` : ""}`;
  if (s.every !== undefined) return `every ${s.every}`;
  return `at ${s.at}`;
}

/** Jobs as a table: id, kind, agent, schedule, next run, runs, target, last error. */
export function formatJobs(jobs: CronJobInfo[]): string[] {
  if (jobs.length === 0) return ["no scheduled jobs"];
  return formatTable(
    ["ID", "KIND", "AGENT", "SCHEDULE", "NEXT", "RUNS", "DELIVER TO", "LAST ERROR"],
    jobs.map((j) => [
      j.id,
      j.kind,
      j.agent,
      scheduleCell(j.schedule),
      j.next ?? "-",
      String(j.runs),
      j.deliver ? `${j.deliver.channel}:${j.deliver.peer}` : "-",
      j.lastError ?? "",
    ]),
  );
}

/** Registers `exoclaw cron`. */
export function registerCronCommands(program: Command, io: CliIo = processIo): void {
  const cron = program.command("cron").description("Scheduled jobs, heartbeats and reminders of the running gateway (scope admin)");
  const configOpt = ["-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)"] as const;

  cron
    .command("list")
    .description("List every scheduled job with its next run, runs and last error")
    .option(...configOpt)
    .option("--json", "print the cron.list result as JSON")
    .action((opts: { config?: string; json?: boolean }) =>
      withGateway(io, opts.config, async (call) => {
        const { jobs } = await call<{ jobs: CronJobInfo[] }>("cron.list");
        for (const line of opts.json ? [JSON.stringify(jobs, null, 2)] : formatJobs(jobs)) io.out(line);
      }),
    );

  cron
    .command("add <id>")
    .description("Add a job at runtime (stored in the state dir); exactly one of --cron, --every, --at")
    .requiredOption("--prompt <text>", "the message the agent's turn gets")
    .option("--cron <expr>", 'cron expression, 5 fields or 6 with seconds ("0 9 * * 1-5")')
    .option("--tz <zone>", "IANA time zone of --cron (default UTC)")
    .option("--every <duration>", "interval: 30s, 15m, 1h, 1d")
    .option("--at <instant>", "once, at an ISO 8601 instant (2026-12-24T18:00:00Z)")
    .option("--agent <id>", "the agent (default: the default agent)")
    .option("--session <key>", "session key the turn runs in (default: the job's own)")
    .option("--deliver <channel:peer>", "send the reply to this channel peer (the agent's outbound allowlist applies)")
    .option("--account <name>", "channel account of --deliver (default: default)")
    .option("--missed <policy>", "runs missed while down: skip (default) or run_once")
    .option(...configOpt)
    .action(
      (
        id: string,
        opts: {
          prompt: string;
          cron?: string;
          tz?: string;
          every?: string;
          at?: string;
          agent?: string;
          session?: string;
          deliver?: string;
          account?: string;
          missed?: string;
          config?: string;
        },
      ) =>
        withGateway(io, opts.config, async (call) => {
          let deliver: { channel: string; peer: string; account?: string } | undefined;
          if (opts.deliver !== undefined) {
            const i = opts.deliver.indexOf(":");
            if (i <= 0 || i === opts.deliver.length - 1)
              throw new Error(`--deliver must be <channel>:<peer>, e.g. telegram:123456 (got ${JSON.stringify(opts.deliver)})`);
            deliver = { channel: opts.deliver.slice(0, i), peer: opts.deliver.slice(i + 1), ...(opts.account !== undefined ? { account: opts.account } : {}) };
          }
          const params = {
            id,
            prompt: opts.prompt,
            ...Object.fromEntries(
              (["cron", "tz", "every", "at", "agent", "session", "missed"] as const).filter((k) => opts[k] !== undefined).map((k) => [k, opts[k]]),
            ),
            ...(deliver !== undefined ? { deliver } : {}),
          };
          const { job } = await call<{ job: CronJobInfo }>("cron.add", params);
          io.out(`added ${job.id}: ${scheduleCell(job.schedule)}, next run ${job.next ?? "none"}`);
        }),
    );

  cron
    .command("remove <id>")
    .description("Remove a job added at runtime, or a reminder (configured jobs are removed in the file)")
    .option(...configOpt)
    .action((id: string, opts: { config?: string }) =>
      withGateway(io, opts.config, async (call) => {
        const { removed } = await call<{ removed: boolean }>("cron.remove", { id });
        if (!removed) throw new Error(`no scheduled job "${id}"`);
        io.out(`removed ${id}`);
      }),
    );

  cron
    .command("run <id>")
    .description("Run a job now, outside its schedule, and wait for the run")
    .option(...configOpt)
    .action((id: string, opts: { config?: string }) =>
      withGateway(io, opts.config, async (call) => {
        const { outcome, job } = await call<{ outcome: string; job: CronJobInfo | null }>("cron.run", { id });
        io.out(`${id}: ${outcome}${job?.lastError ? ` (${job.lastError})` : ""}`);
        if (outcome === "failed") process.exitCode = 1;
      }),
    );
}

/** Flows as a table: id, status, waiting on, step, correlation id, title, horizon. */
export function formatFlows(flows: FlowInfo[]): string[] {
  if (flows.length === 0) return ["no flows"];
  return formatTable(
    ["ID", "STATUS", "WAITING ON", "STEP", "CORRELATION ID", "TITLE", "HORIZON"],
    flows.map((f) => [f.id, f.status, f.waitingOn === "timer" ? `timer ${f.waitUntil}` : (f.waitingOn ?? "-"), f.step, f.correlationId, f.title, f.horizon]),
  );
}

/** Registers `exoclaw flow`. */
export function registerFlowCommands(program: Command, io: CliIo = processIo): void {
  const flow = program.command("flow").description("Durable flows of the running gateway's agents (scope admin)");
  const configOpt = ["-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)"] as const;
  flow
    .command("list")
    .description("List every flow, newest first")
    .option(...configOpt)
    .option("--json", "print the flows.list result as JSON")
    .action((opts: { config?: string; json?: boolean }) =>
      withGateway(io, opts.config, async (call) => {
        const { flows } = await call<{ flows: FlowInfo[] }>("flows.list");
        for (const line of opts.json ? [JSON.stringify(flows, null, 2)] : formatFlows(flows)) io.out(line);
      }),
    );
  flow
    .command("show <id>")
    .description("Show one flow with its state")
    .option(...configOpt)
    .action((id: string, opts: { config?: string }) =>
      withGateway(io, opts.config, async (call) => {
        const { flow: f } = await call<{ flow: FlowInfo }>("flows.get", { id });
        io.out(JSON.stringify(f, null, 2));
      }),
    );
  for (const [name, description] of [
    ["cancel", "Cancel a flow (it resumes no more)"],
    ["resume", "Resume a waiting flow now (a turn in its conversation)"],
  ] as const) {
    flow
      .command(`${name} <id>`)
      .description(description)
      .option(...configOpt)
      .action((id: string, opts: { config?: string }) =>
        withGateway(io, opts.config, async (call) => {
          const { flow: f } = await call<{ flow: FlowInfo }>(`flows.${name}`, { id });
          io.out(`${f.id}: ${f.status}`);
        }),
      );
  }
}
