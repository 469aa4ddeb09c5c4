import { setError } from "./extism";

// Set while reporting, so a failure inside the report (e.g. out of memory while building the
// message) traps straight away instead of recursing.
let aborting = false;

/**
 * AssemblyScript `abort` replacement, wired in with `--use abort=<internal name>` (the exoclaw
 * build script does this). Reports `abort: <message> at <file>:<line>:<column>` through the
 * Extism error channel so the host sees a readable reason, then traps. Never returns.
 */
export function exoclawAbort(
  message: string | null,
  fileName: string | null,
  lineNumber: u32,
  columnNumber: u32,
): void {
  if (aborting) unreachable();
  aborting = true;
  let text = "abort: " + (message != null ? message : "(no message)");
  if (fileName != null) {
    text += " at " + fileName + ":" + lineNumber.toString() + ":" + columnNumber.toString();
  }
  setError(text);
  unreachable();
}
