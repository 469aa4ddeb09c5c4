/**
 * `exoclaw pairing list|approve <code>|deny <code>`: the operator's side of channel pairing
 * (`[channels.<name>] pairing = true`, docs/channels.md), through the running gateway's
 * `pairing.*` methods (scope admin): an approval takes effect at the stranger's next message,
 * without a restart, and is kept in `<state dir>/pairing.json`.
 */
import type { Command } from "commander";
import type { PairingApproval, PairingRequest } from "../channels/index.js";
import { withGateway } from "./gateway-client.js";
import type { CliIo } from "./io.js";
import { formatTable } from "./plugin.js";

const processIo: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

const who = (p: { channel: string; account: string; peer: string; senderName?: string }) =>
  `${p.channel}/${p.account}/${p.peer}${p.senderName !== undefined ? ` (${JSON.stringify(p.senderName)})` : ""}`;

/** `pairing.list`'s result as text lines: pending codes, then approved peers. */
export function formatPairing(r: { pending: PairingRequest[]; approved: PairingApproval[] }): string[] {
  const lines: string[] = [];
  if (r.pending.length === 0) lines.push("no pending pairing codes");
  else
    lines.push(
      ...formatTable(
        ["CODE", "PEER", "REQUESTED", "STATE"],
        r.pending.map((p) => [p.code, who(p), new Date(p.createdAt).toISOString(), p.denied === true ? "denied" : "pending"]),
      ),
    );
  if (r.approved.length > 0) {
    lines.push(
      "",
      ...formatTable(
        ["CODE", "APPROVED PEER", "APPROVED"],
        r.approved.map((a) => [a.code, who(a), new Date(a.approvedAt).toISOString()]),
      ),
    );
  }
  return lines;
}

/** Registers `exoclaw pairing list|approve|deny`. */
export function registerPairingCommands(program: Command, io: CliIo = processIo): void {
  const pairing = program.command("pairing").description("Let strangers who asked for it reach an agent (channels with pairing = true)");
  const configOpt = ["-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)"] as const;
  pairing
    .command("list")
    .description("Pending pairing codes and approved peers")
    .option(...configOpt)
    .option("--json", "print the pairing.list result as JSON")
    .action((opts: { config?: string; json?: boolean }) =>
      withGateway(io, opts.config, async (call) => {
        const r = await call<{ pending: PairingRequest[]; approved: PairingApproval[] }>("pairing.list");
        for (const line of opts.json ? [JSON.stringify(r, null, 2)] : formatPairing(r)) io.out(line);
      }),
    );
  pairing
    .command("approve <code>")
    .description("Approve a pairing code: its peer may write to the channel from its next message")
    .option(...configOpt)
    .action((code: string, opts: { config?: string }) =>
      withGateway(io, opts.config, async (call) => {
        const { approved } = await call<{ approved: PairingApproval }>("pairing.approve", { code });
        io.out(`approved ${approved.code}: ${who(approved)}`);
      }),
    );
  pairing
    .command("deny <code>")
    .description("Deny a pending pairing code (its stranger gets no answer until it expires), or revoke an approval")
    .option(...configOpt)
    .action((code: string, opts: { config?: string }) =>
      withGateway(io, opts.config, async (call) => {
        const r = await call<{ code: string; revoked: boolean }>("pairing.deny", { code });
        io.out(r.revoked ? `revoked ${r.code}` : `denied ${r.code}`);
      }),
    );
}
