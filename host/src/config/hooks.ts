/**
 * `[hooks]` of exoclaw.toml: which plugins' lifecycle hooks run, in which order, with which
 * timeout and failure mode (host/src/agent/hooks/). Kept out of schema.ts so that file only
 * names it.
 */
import * as z from "zod";

/** What a failing hook call (error, trap, timeout, bad output) does: `open` goes on as if it had not run, `closed` stops. */
export type HookFailMode = "open" | "closed";

/** `[hooks]`, resolved. */
export interface HooksConfig {
  /** Plugins whose hooks run, in this order (deny by default: a plugin not listed never runs a hook). */
  order: string[];
  /** Time limit of one hook call, ms (the plugin's own call limit applies too). */
  timeoutMs: number;
  /** Failure mode of plugins without their own. */
  fail: HookFailMode;
  /** Per-plugin overrides. */
  plugins: Record<string, { timeoutMs?: number; fail?: HookFailMode }>;
}

/** Default time limit of one hook call, ms. */
export const DEFAULT_HOOK_TIMEOUT_MS = 250;

const failMode = z.lazy(() => z.enum(["open", "closed"]));
const timeout = z.lazy(() => z.number().int().positive().max(60_000));

/** Zod schema of `[hooks]` (snake_case keys). */
export const HooksTableSchema = z.lazy(() =>
  z.strictObject({
    order: z.array(z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, "plugin names must be lowercase [a-z][a-z0-9_-]{0,63}")).default([]),
    timeout_ms: timeout.optional(),
    fail: failMode.optional(),
    plugins: z.record(z.string(), z.strictObject({ timeout_ms: timeout.optional(), fail: failMode.optional() })).optional(),
  }),
);

/** `[hooks]` as read from the file to {@link HooksConfig} (absent = no hooks run). */
export function resolveHooks(t: z.infer<typeof HooksTableSchema> | undefined): HooksConfig {
  return {
    order: [...new Set(t?.order ?? [])],
    timeoutMs: t?.timeout_ms ?? DEFAULT_HOOK_TIMEOUT_MS,
    fail: t?.fail ?? "open",
    plugins: Object.fromEntries(
      Object.entries(t?.plugins ?? {}).map(([k, v]) => [
        k,
        { ...(v.timeout_ms !== undefined ? { timeoutMs: v.timeout_ms } : {}), ...(v.fail ? { fail: v.fail } : {}) },
      ]),
    ),
  };
}
