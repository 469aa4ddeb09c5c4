/**
 * `exoclaw approvals list|approve <id>|deny <id>`: the tool calls parked in the running gateway
 * for a person's yes (`approvals.*`, docs/protocol.md; scope admin, the gateway token).
 */
import type { Command } from "commander";
import type { PendingApproval } from "../agent/index.js";
import { loadConfig } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import { connectGateway } from "./gateway-client.js";
import type { CliIo } from "./io.js";
import { formatTable } from "./plugin.js";

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** The pending approvals as table lines (`no approval waits` when none). */
export function formatApprovals(list: readonly PendingApproval[], now = Date.now()): string[] {
  if (list.length === 0) return ["no approval waits"];
  return formatTable(
    ["ID", "AGENT", "TOOL", "INPUT", "APPROVER", "EXPIRES IN"],
    list.map((a) => {
      const input = JSON.stringify(a.input ?? null);
      return [
        a.id,
        a.agentId,
        a.tool,
        input.length > 60 ? `${input.slice(0, 59)}…` : input,
        a.approver ?? "(admin)",
        `${Math.max(0, Math.round((a.expiresAt - now) / 1000))}s`,
      ];
    }),
  );
}

/** Registers `exoclaw approvals`. */
export function registerApprovalCommands(program: Command, io: CliIo = processIo): void {
  const group = program.command("approvals").description("Tool calls waiting for a person's yes in the running gateway");
  const run = async (configFile: string | undefined, fn: (call: <T>(m: string, p?: Record<string, unknown>) => Promise<T>) => Promise<string[]>) => {
    try {
      const config = loadConfig({ config: configFile }, io.env, [BUILTIN_PLUGINS_DIR]);
      const client = await connectGateway(config);
      try {
        for (const line of await fn((m, p) => client.call(m, p))) io.out(line);
      } finally {
        await client.close();
      }
    } catch (err) {
      io.err(`exoclaw: ${(err as Error).message}`);
      process.exitCode = 1;
    }
  };
  group
    .command("list")
    .description("List the approvals waiting (approvals.list)")
    .option("-c, --config <file>", "exoclaw.toml to read")
    .option("--json", "print the result as JSON")
    .action((opts: { config?: string; json?: boolean }) =>
      run(opts.config, async (call) => {
        const r = await call<{ approvals: PendingApproval[] }>("approvals.list");
        return opts.json ? [JSON.stringify(r, null, 2)] : formatApprovals(r.approvals);
      }),
    );
  for (const [name, approved] of [
    ["approve", true],
    ["deny", false],
  ] as const) {
    group
      .command(`${name} <id>`)
      .description(`${approved ? "Approve" : "Deny"} a waiting tool call (approvals.${name})`)
      .option("-c, --config <file>", "exoclaw.toml to read")
      .action((id: string, opts: { config?: string }) =>
        run(opts.config, async (call) => {
          await call(`approvals.${name}`, { id });
          return [`${approved ? "approved" : "denied"} ${id.toLowerCase()}`];
        }),
      );
  }
}
