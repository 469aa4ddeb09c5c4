/**
 * Compiles a tool allowlist (exact names and `*` globs, e.g. `["calculator", "web_*"]`) into a
 * predicate. An empty list allows nothing. Pure.
 */
export function compileToolAllowlist(patterns: readonly string[]): (toolName: string) => boolean {
  const exact = new Set(patterns.filter((p) => !p.includes("*")));
  const globs = patterns
    .filter((p) => p.includes("*"))
    .map(
      (p) =>
        new RegExp(
          `^${p
            .split("*")
            .map((s) => s.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
            .join(".*")}$`,
        ),
    );
  return (name) => exact.has(name) || globs.some((g) => g.test(name));
}
