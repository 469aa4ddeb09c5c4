/**
 * The vocabulary of `exoclaw doctor`: every check returns findings, each with a severity and,
 * when something is wrong, the exact command or edit that fixes it.
 */

/** `ok`: checked and fine; `warn`: works but risky or degraded; `error`: the gateway will fail or misbehave. */
export type Severity = "ok" | "warn" | "error";

/** One result of one check. */
export interface Finding {
  /** The check that produced it, e.g. `state-dir`, `provider:anthropic`, `channel:telegram`. */
  check: string;
  severity: Severity;
  /** What was found, naming the file, key, URL or process concerned (never a secret's value). */
  message: string;
  /** The exact fix (a command, or the key to set in which file); absent when `severity` is `ok`. */
  fix?: string;
  /** Set when `--fix` applied the fix (the finding then describes the state before it). */
  fixed?: boolean;
  /** Measured latency of a reachability check, ms. */
  latencyMs?: number;
}

/** What a check may change with `--fix`: only safe, local, reversible things (modes, missing directories). */
export interface FixOptions {
  fix: boolean;
}

/** Shorthand constructors, so checks read as a list of outcomes. */
export const ok = (check: string, message: string, extra: Partial<Finding> = {}): Finding => ({ check, severity: "ok", message, ...extra });
export const warn = (check: string, message: string, fix: string, extra: Partial<Finding> = {}): Finding => ({
  check,
  severity: "warn",
  message,
  fix,
  ...extra,
});
export const error = (check: string, message: string, fix: string, extra: Partial<Finding> = {}): Finding => ({
  check,
  severity: "error",
  message,
  fix,
  ...extra,
});

/** The worst severity among `findings` (`ok` for none). */
export function worst(findings: readonly Finding[]): Severity {
  if (findings.some((f) => f.severity === "error" && !f.fixed)) return "error";
  if (findings.some((f) => f.severity === "warn" && !f.fixed)) return "warn";
  return "ok";
}

/** ` (ECONNREFUSED)` from an error's `cause` (fetch and the SDKs say only "fetch failed" / "Connection error."), or "". */
export function causeCode(err: unknown): string {
  let cause = (err as { cause?: unknown }).cause;
  for (let i = 0; i < 3 && cause !== undefined; i++) {
    const code = (cause as { code?: unknown }).code;
    if (typeof code === "string") return ` (${code})`;
    cause = (cause as { cause?: unknown }).cause;
  }
  return "";
}
