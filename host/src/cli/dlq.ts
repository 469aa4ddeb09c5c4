/**
 * `exoclaw dlq list|replay|purge`: the dead letters of the configured NATS bus (`[bus] url` or
 * `EXOCLAW_NATS_URL`) — channel messages whose turn failed `[bus] max_deliver` times, replies
 * the platform refused as often, and messages a gateway refused outright (docs/bus.md).
 *
 * Exit codes: 0 done; 1 the operation failed (unknown id, ...); 2 no bus configured, or NATS
 * unreachable (the message names the URL).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { InvalidArgumentError, type Command } from "commander";
import { createBus, dlqList, dlqPurge, dlqReplay, formatDeadLetters, type Bus } from "../bus/index.js";
import { loadConfig } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";

/** Where the commands write; tests substitute buffers. */
export interface DlqCliIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}

const processIo: DlqCliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
  env: process.env,
};

/** A failure with the process exit code to report. */
class DlqCliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
    this.name = "DlqCliError";
  }
}

/** How long the commands wait for NATS before giving up, ms. */
const CONNECT_WAIT_MS = 5_000;
/** How long `replay` waits for publishes that went to the spool (NATS dropped meanwhile), ms. */
const SPOOL_DRAIN_WAIT_MS = 10_000;

const hideCredentials = (url: string) => url.replace(/\/\/[^/@]*@/, "//");

/**
 * Opens the configured bus with a private spool (a gateway may be running on the state
 * directory, and a spool belongs to one process), and checks that NATS answers.
 * @throws DlqCliError (exit 2) when no bus is configured or NATS is unreachable
 */
async function openBus(configFile: string | undefined, env: NodeJS.ProcessEnv): Promise<{ bus: Bus; close(): Promise<void> }> {
  const config = loadConfig({ config: configFile }, env, [BUILTIN_PLUGINS_DIR]);
  if (config.bus === undefined) {
    throw new DlqCliError(
      `no message bus is configured (set [bus] url = "nats://host:port" in ${config.source ?? "exoclaw.toml"}, or EXOCLAW_NATS_URL); dead letters exist only with a bus`,
      2,
    );
  }
  const servers = config.bus.servers;
  const spoolDir = await mkdtemp(join(tmpdir(), "exoclaw-dlq-"));
  let bus: Bus;
  try {
    bus = await createBus({
      kind: "nats",
      servers,
      stateDir: spoolDir,
      ...(config.bus.partitions !== undefined ? { partitions: config.bus.partitions } : {}),
      connectWaitMs: CONNECT_WAIT_MS,
      name: `exoclaw-dlq-${process.pid}`,
    });
  } catch (err) {
    await rm(spoolDir, { recursive: true, force: true });
    throw err;
  }
  if (!bus.status().connected) {
    await bus.close().catch(() => {});
    await rm(spoolDir, { recursive: true, force: true });
    throw new DlqCliError(
      `cannot reach NATS at ${servers.map(hideCredentials).join(",")} (waited ${CONNECT_WAIT_MS / 1000} s); is nats-server running with JetStream?`,
      2,
    );
  }
  return {
    bus,
    async close() {
      // A replay published while NATS dropped is in the private spool: wait for it to drain.
      const deadline = Date.now() + SPOOL_DRAIN_WAIT_MS;
      while (bus.status().spooled > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      const left = bus.status().spooled;
      await bus.close();
      if (left > 0) {
        throw new DlqCliError(
          `${left} replayed message(s) could not reach NATS and are kept in ${join(spoolDir, "bus", "spool")}; run the replay again when NATS is back (their entries were removed from the dead-letter store)`,
          1,
        );
      }
      await rm(spoolDir, { recursive: true, force: true });
    },
  };
}

function limitArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError("must be a positive integer");
  return n;
}

/** Registers `exoclaw dlq ...` on the program. */
export function registerDlqCommands(program: Command, io: DlqCliIo = processIo): void {
  const dlq = program.command("dlq").description("Dead letters of the NATS message bus: list, replay, purge ([bus] url or EXOCLAW_NATS_URL)");
  const configOption = ["-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)"] as const;

  const withBus = async (opts: { config?: string }, fn: (bus: Bus) => Promise<void>) => {
    let opened: Awaited<ReturnType<typeof openBus>> | undefined;
    try {
      opened = await openBus(opts.config, io.env);
      await fn(opened.bus);
      await opened.close();
      opened = undefined;
    } catch (err) {
      io.err(`exoclaw: ${(err as Error).message}`);
      process.exitCode = err instanceof DlqCliError ? err.exitCode : 1;
    } finally {
      await opened?.close().catch(() => {});
    }
  };

  dlq
    .command("list")
    .description("List dead letters, oldest first: id, time, consumer, attempts, subject, message id, last error")
    .option(...configOption)
    .option("--consumer <name>", "only this durable consumer's (gateway, out-<channel>)")
    .option("--limit <n>", "at most this many entries", limitArg)
    .option("--json", "print the entries as JSON (with their payloads)")
    .action((opts: { config?: string; consumer?: string; limit?: number; json?: boolean }) =>
      withBus(opts, async (bus) => {
        const entries = await dlqList(bus, { consumer: opts.consumer, limit: opts.limit });
        io.out(opts.json ? JSON.stringify(entries, null, 2) : formatDeadLetters(entries).trimEnd());
      }),
    );

  dlq
    .command("replay [ids...]")
    .description("Publish dead letters again to their subjects (a fresh attempt) and remove them; --all for every entry")
    .option(...configOption)
    .option("--all", "replay every dead letter")
    .option("--json", "print the results as JSON")
    .action((ids: string[], opts: { config?: string; all?: boolean; json?: boolean }) =>
      withBus(opts, async (bus) => {
        if (ids.length > 0 && opts.all) throw new DlqCliError("give dead-letter ids or --all, not both", 1);
        const results = await dlqReplay(bus, ids, { all: opts.all });
        if (opts.json) io.out(JSON.stringify(results, null, 2));
        else {
          for (const r of results) io.out(`replayed ${r.id} as ${r.msgId} (${r.ack.storedIn}${r.ack.duplicate ? ", duplicate" : ""})`);
          io.out(`${results.length} dead letter(s) replayed`);
        }
      }),
    );

  dlq
    .command("purge [ids...]")
    .description("Remove dead letters for good; --all for every entry")
    .option(...configOption)
    .option("--all", "remove every dead letter")
    .option("--json", "print {purged: n}")
    .action((ids: string[], opts: { config?: string; all?: boolean; json?: boolean }) =>
      withBus(opts, async (bus) => {
        if (ids.length > 0 && opts.all) throw new DlqCliError("give dead-letter ids or --all, not both", 1);
        const n = await dlqPurge(bus, ids, { all: opts.all });
        io.out(opts.json ? JSON.stringify({ purged: n }) : `${n} dead letter(s) purged`);
      }),
    );
}
