/**
 * `exoclaw usage [--by agent|peer|model|day] [--since 7d|2026-12-01] [--json]`: token and USD
 * totals of the running gateway's session log (`usage.summary`, docs/protocol.md).
 */
import { InvalidArgumentError, type Command } from "commander";
import type { UsageSummary } from "../agent/index.js";
import { loadConfig } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { DURATION_HINT, parseDuration } from "../util/index.js";
import { connectGateway } from "./gateway-client.js";
import type { CliIo } from "./io.js";
import { formatTable } from "./plugin.js";

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

const GROUPS = ["agent", "peer", "model", "day"] as const;

/**
 * `--since`: a duration back from `nowMs` (`7d`, `12h`) or a date/time (`2026-12-01`,
 * ISO 8601), as ms since the Unix epoch.
 * @throws InvalidArgumentError naming the accepted forms
 */
export function parseSince(text: string, nowMs = Date.now()): number {
  const d = parseDuration(text);
  if (d !== undefined) return nowMs - d;
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (Number.isFinite(t)) return t;
  }
  throw new InvalidArgumentError(`must be a duration (${DURATION_HINT}) or a date like 2026-12-01`);
}

/** USD with 6 decimals (micro-dollars: one cheap call can cost less than a cent). */
function usd(n: number): string {
  return `$${n.toFixed(6)}`;
}

/** The summary as text lines: totals, then one row per group. */
export function formatUsage(s: UsageSummary): string[] {
  const t = s.totals;
  const lines = [
    `since     ${s.since ?? "the beginning of the log"}`,
    `calls     ${t.calls}${t.unpricedCalls > 0 ? ` (${t.unpricedCalls} without a price)` : ""}`,
    `tokens    ${t.inputTokens} in, ${t.outputTokens} out, ${t.cacheReadTokens} cache read, ${t.cacheWriteTokens} cache write`,
    `cost      ${usd(t.costUsd)}`,
  ];
  if (s.groups !== undefined) {
    lines.push(
      "",
      ...formatTable(
        [s.by!.toUpperCase(), "CALLS", "INPUT", "OUTPUT", "CACHE READ", "CACHE WRITE", "COST USD"],
        s.groups.map((g) => [
          g.key,
          String(g.calls),
          String(g.inputTokens),
          String(g.outputTokens),
          String(g.cacheReadTokens),
          String(g.cacheWriteTokens),
          usd(g.costUsd),
        ]),
      ),
    );
  }
  return lines;
}

/** Registers `exoclaw usage`. */
export function registerUsageCommand(program: Command, io: CliIo = processIo): void {
  program
    .command("usage")
    .description("Ask the running gateway for token and cost totals (usage.summary), optionally grouped")
    .option("-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)")
    .option("--by <group>", "group by agent, peer, model or day (day in [budgets] timezone)", (v: string) => {
      if (!(GROUPS as readonly string[]).includes(v)) throw new InvalidArgumentError(`must be one of ${GROUPS.join(", ")}`);
      return v as (typeof GROUPS)[number];
    })
    .option("--since <when>", "only usage since a duration ago (7d, 12h) or a date (2026-12-01)", (v: string) => parseSince(v))
    .option("--json", "print the usage.summary result as JSON")
    .action(async (opts: { config?: string; by?: (typeof GROUPS)[number]; since?: number; json?: boolean }) => {
      try {
        const config = loadConfig({ config: opts.config }, io.env, [BUILTIN_PLUGINS_DIR]);
        const client = await connectGateway(config);
        try {
          const summary = await client.call<UsageSummary>("usage.summary", {
            ...(opts.since !== undefined ? { sinceMs: opts.since } : {}),
            ...(opts.by !== undefined ? { by: opts.by } : {}),
          });
          for (const line of opts.json ? [JSON.stringify(summary, null, 2)] : formatUsage(summary)) io.out(line);
        } finally {
          await client.close();
        }
      } catch (err) {
        io.err(`exoclaw: ${(err as Error).message}`);
        process.exitCode = 1;
      }
    });
}
