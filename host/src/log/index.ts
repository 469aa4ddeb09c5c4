import { pino, type DestinationStream, type Logger, type LevelWithSilent } from "pino";
import { processSecrets, type SecretRegistry } from "./secrets.js";
import { processLogTail } from "./tail.js";

export type { Logger } from "pino";
export { redactUrl } from "./redact-url.js";
export { LOG_LEVELS, LogTail, processLogTail, type LogLevelName, type TailLine } from "./tail.js";
export {
  MIN_SECRET_LENGTH,
  SECRET_MARKER,
  SecretRegistry,
  processSecrets,
  registerConfigSecrets,
  type SecretSources,
} from "./secrets.js";

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** pino level name; default `EXOCLAW_LOG_LEVEL` or `info`. */
  level?: LevelWithSilent;
  /** Secret values scrubbed from every line; default {@link processSecrets}. */
  secrets?: SecretRegistry;
  /** Where lines go; default stdout. */
  destination?: DestinationStream;
}

/** Keys whose values are replaced by `[redacted]` wherever they appear in a log object. */
const REDACT_PATHS = ["token", "apiKey", "authorization", "*.token", "*.apiKey", "*.authorization", "headers.authorization", "*.headers.authorization"];

/**
 * Creates the process logger: newline-delimited JSON on stdout (pino), with secrets redacted
 * twice: by key (`token`, `apiKey`, `authorization` fields) and by value (every value in
 * `secrets`, in any field or message, through pino's `streamWrite` hook on the serialized line).
 * @throws Error if `level` is not a pino level name.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.EXOCLAW_LOG_LEVEL as LevelWithSilent | undefined) ?? "info";
  const secrets = options.secrets ?? processSecrets;
  const config = {
    name: "exoclaw",
    level,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    base: { pid: process.pid },
    // Scrubbed lines are also kept for `logs.tail` (tail.ts): the same text the log file gets.
    hooks: {
      streamWrite: (line: string) => {
        const out = secrets.scrub(line);
        processLogTail.push(out);
        return out;
      },
    },
  };
  return options.destination === undefined ? pino(config) : pino(config, options.destination);
}

/** A logger that drops everything, for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
