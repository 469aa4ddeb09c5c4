import { pino, type Logger, type LevelWithSilent } from "pino";

export type { Logger } from "pino";

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** pino level name; default `EXOCLAW_LOG_LEVEL` or `info`. */
  level?: LevelWithSilent;
}

/** Keys whose values are replaced by `[redacted]` wherever they appear in a log object. */
const REDACT_PATHS = [
  "token",
  "apiKey",
  "authorization",
  "*.token",
  "*.apiKey",
  "*.authorization",
  "headers.authorization",
  "*.headers.authorization",
];

/**
 * Creates the process logger: newline-delimited JSON on stdout (pino), with secrets redacted.
 * @throws Error if `level` is not a pino level name.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.EXOCLAW_LOG_LEVEL as LevelWithSilent | undefined) ?? "info";
  return pino({
    name: "exoclaw",
    level,
    redact: { paths: REDACT_PATHS, censor: "[redacted]" },
    base: { pid: process.pid },
  });
}

/** A logger that drops everything, for library use and tests. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
