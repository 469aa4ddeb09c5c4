import { readFileSync } from "node:fs";
import { ConfigError, loadConfig, type Config } from "../../config/index.js";
import { error, ok, type Finding } from "./types.js";

/**
 * The 1-based line of `exoclaw.toml` that sets `path` (a zod issue path such as
 * `agents.0.model`), or of the nearest enclosing key or table header (pure). Tracks `[table]`
 * and `[[array]]` headers (the n-th `[[agents]]` is `agents.<n-1>`) and dotted keys; a key
 * inside an inline table resolves to the line of that table's key.
 * @returns undefined when no line sets any prefix of `path`
 */
export function keyLine(text: string, path: readonly string[]): number | undefined {
  const arrays = new Map<string, number>();
  let table: string[] = [];
  let best: { line: number; depth: number } | undefined;
  const consider = (full: string[], line: number) => {
    if (full.length > path.length || !full.every((s, i) => s === path[i])) return;
    if (best === undefined || full.length >= best.depth) best = { line, depth: full.length };
  };
  const unquote = (s: string) =>
    s
      .trim()
      .replace(/^"(.*)"$/, "$1")
      .replace(/^'(.*)'$/, "$1");
  const lines = text.split(/\r?\n/);
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^\[\[\s*([^\]]+?)\s*\]\]/.exec(line))) {
      const name = m[1]!.split(".").map(unquote).join(".");
      const n = (arrays.get(name) ?? 0) + 1;
      arrays.set(name, n);
      table = [...name.split("."), String(n - 1)];
      consider(table, i + 1);
    } else if ((m = /^\[\s*([^\]]+?)\s*\]/.exec(line))) {
      const segs = m[1]!.split(".").map(unquote);
      // `[agents.queue]` after `[[agents]]` belongs to the latest agents entry.
      const count = arrays.get(segs[0]!);
      table = count !== undefined ? [segs[0]!, String(count - 1), ...segs.slice(1)] : segs;
      consider(table, i + 1);
    } else if ((m = /^((?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+)(?:\s*\.\s*(?:"[^"]*"|'[^']*'|[A-Za-z0-9_-]+))*)\s*=/.exec(line))) {
      consider([...table, ...m[1]!.split(".").map(unquote)], i + 1);
    }
  }
  return best?.line;
}

/**
 * Adds `(line N)` to each `  field: problem` line of a schema error from `readConfigFile`
 * (`<file>: invalid configuration` followed by one line per issue).
 */
export function withLines(message: string, text: string): string {
  return message
    .split("\n")
    .map((l) => {
      const m = /^ {2}([^:]+): /.exec(l);
      if (!m || m[1] === "(root)") return l;
      const line = keyLine(text, m[1]!.split("."));
      return line === undefined ? l : l.replace(/^ {2}([^:]+): /, `  $1 (line ${line}): `);
    })
    .join("\n");
}

/**
 * Loads the configuration as the gateway would (`loadConfig`: defaults < file < environment
 * < flags). A schema error is reported with the line of each offending key.
 * @returns the finding, and the config when it loaded
 */
export function checkConfig(load: () => Config, file: string | undefined): { finding: Finding; config?: Config } {
  try {
    const config = load();
    return { finding: ok("config", config.source ? `${config.source} is valid` : "no config file: defaults and environment"), config };
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    let message = err.message;
    const path = file ?? /^([^:\n]+\.toml):/.exec(message)?.[1];
    if (path !== undefined && message.includes("invalid configuration")) {
      try {
        message = withLines(message, readFileSync(path, "utf8"));
      } catch {
        // unreadable: the message already says so
      }
    }
    const where = path ?? "the environment variable named above";
    return { finding: { check: "config", severity: "error", message, fix: `edit ${where} as the message says (docs: exoclaw.toml has every key, commented)` } };
  }
}

export { loadConfig };
