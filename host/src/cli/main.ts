import { Command, InvalidArgumentError } from "commander";
import { createLogger, processSecrets } from "../log/index.js";
import { VERSION } from "../version.js";
import type { GatewayApp } from "../gateway/index.js";
import { runGateway } from "./gateway.js";
import { registerPluginCommands } from "./plugin.js";
import { registerSessionCommands } from "./sessions.js";
import { registerMemoryCommands } from "./memory.js";
import { registerStoreCommands } from "./store.js";
import { registerDlqCommands } from "./dlq.js";
import { registerOpsCommands } from "./ops.js";
import { registerConfigCommands } from "./config.js";
import { registerOnboardCommand } from "./onboard.js";
import { registerUsageCommand } from "./usage.js";
import { registerCronCommands, registerFlowCommands } from "./cron.js";
import { registerApprovalCommands } from "./approvals.js";
import { registerMcpCommands } from "./mcp.js";
import { registerPairingCommands } from "./pairing.js";

function portArg(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError("must be a port number (0-65535)");
  return n;
}

/** The umask of every command that touches the state directory: no access for group and others. */
export const PRIVATE_UMASK = 0o077;

/** `exoclaw plugin <command>`s that write into the user's project, not the state directory. */
const AUTHORING_COMMANDS = new Set(["new", "build", "pack", "test", "inspect"]);

/**
 * The `exoclaw` command line.
 * @param argv full process argv (`process.argv`)
 */
export async function main(argv: string[]): Promise<void> {
  const program = new Command()
    .name("exoclaw")
    .description("An AI agent gateway: channels and tools run as capability-gated WASM plugins.")
    .version(VERSION, "-v, --version")
    .showHelpAfterError();
  // Everything the gateway and the state-directory commands create (session store, kv files,
  // approvals, spool, cursors, SurrealDB's own files) is private to the user: 0600 files, 0700
  // directories. The project-authoring commands write into the user's source tree and keep the
  // user's umask.
  program.hook("preAction", (_root, action) => {
    if (!(action.parent?.name() === "plugin" && AUTHORING_COMMANDS.has(action.name()))) process.umask(PRIVATE_UMASK);
  });

  program
    .command("gateway")
    .description("Run the gateway: HTTP + WebSocket (JSON-RPC 2.0, JSON or MessagePack) on 127.0.0.1:7200")
    .option("-p, --port <port>", "TCP port (env EXOCLAW_PORT; 0 = any free port)", portArg)
    .option("-b, --bind <host>", "interface to bind (env EXOCLAW_BIND); off loopback needs EXOCLAW_TOKEN")
    .option("-c, --config <file>", "exoclaw.toml to read (env EXOCLAW_CONFIG; default ~/.exoclaw/exoclaw.toml if present)")
    .option("--plugins-dir <dir>", "directory of .wasm plugins (env EXOCLAW_PLUGINS_DIR; default ~/.exoclaw/plugins)")
    .addHelpText(
      "after",
      `
Provider (zero config): EXOCLAW_PROVIDER=anthropic|openai|gemini|ollama and EXOCLAW_MODEL choose explicitly;
otherwise ANTHROPIC_API_KEY -> anthropic, OPENAI_API_KEY -> openai, GEMINI_API_KEY or GOOGLE_API_KEY
-> gemini, else Ollama at OLLAMA_HOST (default 127.0.0.1:11434). ANTHROPIC_BASE_URL, OPENAI_BASE_URL
and GOOGLE_GEMINI_BASE_URL are honoured.
Other: EXOCLAW_TOKEN, EXOCLAW_LOG_LEVEL (info), EXOCLAW_TRANSPORT=auto|uws|ws, EXOCLAW_STATE_DIR,
EXOCLAW_STORE=memory|mem://|surrealkv://<dir>|ws://host:port|nats://host:port (default surrealkv://<state dir>/data),
EXOCLAW_NATS_URL=nats://host:port[,nats://...] (the message bus shared by several gateways; default none).`,
    )
    .action(async (opts: { port?: number; bind?: string; config?: string; pluginsDir?: string }) => {
      const logger = createLogger();
      let gateway: GatewayApp | undefined;
      let signals = 0;
      let exitCode = 0;
      let stopping = false;
      // Shuts down once, then exits with `exitCode`. The app bounds the whole shutdown with a
      // hard deadline (drain up to the grace period, then 5 s for closing channels, sockets,
      // plugins and the store): a step that hangs (a wedged store, a client that never finishes
      // its request) must not keep the process alive past what a supervisor waits for; this
      // process exits then, whatever still runs. See docs/reliability.md.
      const shutDown = (running: GatewayApp, code: number) => {
        exitCode = Math.max(exitCode, code);
        if (stopping) return;
        stopping = true;
        void running.stop().then((report) => {
          if (report.unfinished.length > 0) {
            logger.error({ deadlineMs: report.deadlineMs }, "shutdown did not finish within the grace period plus 5 s: exiting now");
            process.exit(exitCode === 0 ? 1 : exitCode);
          }
          if (report.failed.length > 0) {
            logger.error({ failed: report.failed }, "shutdown failed");
            process.exit(1);
          }
          process.exit(exitCode);
        });
      };
      // Installed before start-up: a signal that arrives while the gateway starts (or right
      // after its "gateway ready" line) shuts it down once it runs, instead of killing it mid-write.
      const stop = (signal: NodeJS.Signals) => {
        if (++signals > 1) {
          logger.warn({ signal }, "second signal: exiting now");
          process.exit(130);
        }
        logger.info({ signal }, "signal received");
        if (gateway) shutDown(gateway, 0);
      };
      process.on("SIGINT", stop);
      process.on("SIGTERM", stop);
      // SIGHUP re-reads the config file (the daemon convention) instead of ending the process.
      process.on("SIGHUP", () => {
        if (gateway === undefined || stopping) return logger.warn({ signal: "SIGHUP" }, "SIGHUP before the gateway is ready (or while it stops): ignored");
        logger.info({ signal: "SIGHUP" }, "signal received: reloading the configuration");
        void gateway.reload("signal");
      });
      try {
        gateway = await runGateway(opts, logger);
      } catch (err) {
        logger.fatal({ err: { message: (err as Error).message, name: (err as Error).name } }, "gateway failed to start");
        process.stderr.write(`exoclaw: ${processSecrets.scrub((err as Error).message)}\n`);
        process.exitCode = 1;
        return;
      }
      const running = gateway;
      if (signals > 0) shutDown(running, 0);
      // The session store stopped taking writes (e.g. its disk filled up): not recoverable in
      // this process, so shut down and exit 1 for the supervisor to restart the gateway.
      void running.broken.then(() => shutDown(running, 1));
    });

  // `exoclaw gateway ...` needs none of the other commands: building their ~60 commander
  // definitions is start-up time of every gateway (its help and errors name only its own options).
  if (argv[2] !== "gateway") registerOtherCommands(program);
  await program.parseAsync(argv);
}

/** Every command but `gateway`. */
function registerOtherCommands(program: Command): void {
  registerPluginCommands(program);
  registerSessionCommands(program);
  registerMemoryCommands(program);
  registerStoreCommands(program);
  registerDlqCommands(program);
  registerOpsCommands(program);
  registerConfigCommands(program);
  registerOnboardCommand(program);
  registerUsageCommand(program);
  registerCronCommands(program);
  registerFlowCommands(program);
  registerApprovalCommands(program);
  registerMcpCommands(program);
  registerPairingCommands(program);
}
