// The call path of lifecycle hooks (wit/exoclaw.wit, world `hooks`): encode the hook's input as
// MessagePack, run the export on the plugin's current pool generation, decode the output map.
// Which plugins run, in which order, with which timeout and failure mode is the agent's
// business (host/src/agent/hooks/).
import { pluginEnvelope, standardMsgpack } from "../protocol/msgpack.mjs";
import { errorMessage } from "../util/index.js";
import { failureReason, PluginCallAbortedError } from "./failures.js";
import { callOn, countCall, type CallSite } from "./generation.js";
import type { HookName } from "./hook-names.js";

/**
 * A hook call that produced no usable output: `kind` is the sandbox failure (`timeout`, `trap`,
 * `memory`, `plugin_error`, `busy`, `closed`, `output_too_large`) or `malformed` (not a
 * MessagePack map), `not_available` (the plugin is not loaded, not granted the hook, or lacks
 * the export).
 */
export class HookCallError extends Error {
  constructor(
    readonly plugin: string,
    readonly hook: HookName,
    readonly kind: string,
    reason: string,
  ) {
    super(`hook ${hook} of plugin '${plugin}' failed (${kind}): ${reason}`);
    this.name = "HookCallError";
  }
}

/** What the agent needs of the plugin host to run hooks (PluginHost implements it). */
export interface HookHost {
  /**
   * Calls hook `hook` of `plugin` with `input` (packed as MessagePack, `undefined` fields left
   * out) and returns its output map (`{}` for an empty output).
   * @throws HookCallError for a sandbox failure, malformed output, or a hook the plugin may not run;
   *   PluginCallAbortedError when `signal` aborts
   */
  callHook(plugin: string, hook: HookName, input: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>>;
}

/**
 * Runs one hook export on `site` (see {@link HookHost.callHook}).
 * @throws HookCallError; PluginCallAbortedError when `signal` aborts
 */
export async function callHookExport(site: CallSite, hook: HookName, input: Record<string, unknown>, signal?: AbortSignal): Promise<Record<string, unknown>> {
  const plugin = site.plugin;
  let payload: Uint8Array;
  try {
    payload = standardMsgpack.pack(JSON.parse(JSON.stringify(input)) as unknown);
  } catch (err) {
    throw new HookCallError(plugin, hook, "malformed", `cannot encode the input: ${errorMessage(err)}`);
  }
  const outcome = await callOn(site.gen, hook, payload, signal);
  if (signal?.aborted || (!outcome.ok && outcome.kind === "aborted")) throw new PluginCallAbortedError(plugin, { export: hook as never }, signal?.reason);
  countCall(site.counters, outcome.durationMs);
  site.telemetry.pluginCall(plugin, "tool", outcome.durationMs);
  if (!outcome.ok) {
    site.counters.errors++;
    site.telemetry.pluginCallFailed(plugin, "tool", outcome.kind);
    throw new HookCallError(plugin, hook, outcome.kind, failureReason(plugin, outcome.message));
  }
  if (outcome.output.length === 0) return {};
  let value: unknown;
  try {
    value = pluginEnvelope.unpack(outcome.output);
  } catch (err) {
    site.counters.errors++;
    throw new HookCallError(plugin, hook, "malformed", `output is not MessagePack (${errorMessage(err)})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    site.counters.errors++;
    throw new HookCallError(plugin, hook, "malformed", "output is not a MessagePack map");
  }
  return value as Record<string, unknown>;
}
