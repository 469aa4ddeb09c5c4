// Runs `node bin/exoclaw.js ...` as a real subprocess without blocking the test's event loop
// (the emulator and fake platforms the command talks to run in this process).
import { execFile } from "node:child_process";
import { CLI } from "../support/gateway.js";

/** The outcome of one CLI run. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** The environment without the caller's provider and exoclaw variables, plus `env`. */
export function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const clean: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !/^(EXOCLAW_|ANTHROPIC_|OPENAI_|OLLAMA_|GEMINI_|GOOGLE_|TELEGRAM_)/.test(k)) clean[k] = v;
  return { ...clean, ...env };
}

/**
 * Runs the CLI with `args`.
 * @param options.uid run as this user (tests running as root use it to see what a normal user sees)
 */
export function runCli(args: string[], env: Record<string, string>, options: { uid?: number } = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: cleanEnv(env), encoding: "utf8", timeout: 60_000, ...(options.uid !== undefined ? { uid: options.uid, gid: options.uid } : {}) },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === "number" ? ((err as { code: number }).code as number) : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
