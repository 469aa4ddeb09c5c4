/** Milliseconds per unit of {@link parseDuration}. */
const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** The forms {@link parseDuration} reads, for error messages. */
export const DURATION_HINT = 'a whole number and a unit, like "30d", "12h", "90m", "45s" or "2w"';

/**
 * Parses an operator's duration: a positive whole number followed by one unit, `s` (seconds),
 * `m` (minutes), `h` (hours), `d` (days, 24 h) or `w` (weeks), e.g. `30d`, `12h`. Surrounding
 * spaces are ignored; nothing else is accepted (no fractions, no compound `1h30m`).
 * @returns milliseconds, or undefined when `text` is not such a duration (or overflows)
 */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d{1,12})\s*([smhdw])\s*$/.exec(String(text));
  if (!m) return undefined;
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  return ms > 0 && Number.isSafeInteger(ms) ? ms : undefined;
}
