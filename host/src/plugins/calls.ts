// The call path of the plugin host: encode the input, run the export on the plugin's current
// pool generation (checkout, time limit and abort are the pool's), map a failure to its message
// (failures.ts), decode and check the output.
import { pluginEnvelope, standardMsgpack } from "../protocol/msgpack.mjs";
import { errorMessage } from "../util/index.js";
import { ChannelPluginError, failureMessage, failureReason, PluginCallAbortedError } from "./failures.js";
import { callOn, countCall, type CallSite } from "./generation.js";
import type { CallFailureKind, CallOutcome, ConnectionEffect } from "./sandbox/types.js";
import type { ChannelExport, ConnectionExport, ToolCallContext, ToolResult } from "./types.js";

/** A call outcome other than the caller's abort (which `run` throws). */
type Outcome = Exclude<CallOutcome, { ok: false }> | { ok: false; kind: Exclude<CallFailureKind, "aborted">; message: string; durationMs: number };

function toolError(content: string): ToolResult {
  return { content, isError: true };
}

/** Counts a call that produced no usable result (the plugin's counters and the telemetry). */
function failed(site: CallSite, kind: "tool" | "channel", failure: string): void {
  site.counters.errors++;
  site.telemetry.pluginCallFailed(site.plugin, kind, failure);
}

/**
 * Runs `fn` on the site's generation and counts it.
 * @throws PluginCallAbortedError when `signal` aborted before or during the call (the outcome is
 *   dropped and the call is not counted: the caller went away, the plugin did nothing wrong)
 */
async function run(
  site: CallSite,
  target: { tool: string } | { export: ChannelExport },
  fn: string,
  payload: Uint8Array,
  signal?: AbortSignal,
): Promise<Outcome> {
  const outcome = await callOn(site.gen, fn, payload, signal);
  if (signal?.aborted || (!outcome.ok && outcome.kind === "aborted")) throw new PluginCallAbortedError(site.plugin, target, signal?.reason);
  countCall(site.counters, outcome.durationMs);
  site.telemetry.pluginCall(site.plugin, "tool" in target ? "tool" : "channel", outcome.durationMs);
  return outcome as Outcome;
}

/**
 * Runs one tool call on `site`. Never throws for plugin faults: they become `{isError: true}`
 * results whose content names the plugin, the tool and the reason (see `failureMessage`).
 * @throws PluginCallAbortedError when `signal` aborts
 */
export async function callTool(site: CallSite, name: string, input: unknown, context: ToolCallContext | undefined, signal?: AbortSignal): Promise<ToolResult> {
  let payload: Uint8Array;
  try {
    payload = pluginEnvelope.pack(context ? { name, input, context } : { name, input });
  } catch (err) {
    return toolError(`cannot encode the input of tool '${name}': ${errorMessage(err)}`);
  }

  const outcome = await run(site, { tool: name }, "call", payload, signal);
  const call = { plugin: site.plugin, tool: name };
  if (!outcome.ok) {
    // The sandbox logs failures that replace an instance; the model sees this result.
    failed(site, "tool", outcome.kind);
    return toolError(failureMessage(call, outcome.kind, failureReason(site.plugin, outcome.message)));
  }
  if (outcome.output.length === 0) {
    failed(site, "tool", "malformed");
    return toolError(`plugin '${site.plugin}' returned no output for tool '${name}'`);
  }
  const decoded = decodeResult(outcome.output);
  if (typeof decoded === "string") {
    failed(site, "tool", "malformed");
    return toolError(`plugin '${site.plugin}' returned malformed output for tool '${name}': ${decoded}`);
  }
  return decoded;
}

/**
 * Runs one channel export on `site`: `input` packed as standard MessagePack without its
 * `undefined` fields, the output unpacked (maps as plain objects, bin as bytes).
 * @throws ChannelPluginError for a sandbox failure or output that is not a MessagePack map;
 *   PluginCallAbortedError when `signal` aborts
 */
export async function callChannelExport(site: CallSite, fn: ChannelExport, input: unknown, signal?: AbortSignal): Promise<unknown> {
  return (await runChannelExport(site, fn, input, signal)).value;
}

/**
 * Runs a connection export (`connect`, `on_frame`) like {@link callChannelExport} and returns its
 * output with the connection effects the call left (secrets substituted; empty when none).
 * @throws like callChannelExport
 */
export function callConnectionExport(
  site: CallSite,
  fn: ConnectionExport,
  input: unknown,
  signal?: AbortSignal,
): Promise<{ value: unknown; effects: ConnectionEffect[] }> {
  return runChannelExport(site, fn, input, signal);
}

async function runChannelExport(
  site: CallSite,
  fn: ChannelExport,
  input: unknown,
  signal?: AbortSignal,
): Promise<{ value: unknown; effects: ConnectionEffect[] }> {
  const plugin = site.plugin;
  let payload: Uint8Array;
  try {
    payload = standardMsgpack.pack(withoutUndefined(input));
  } catch (err) {
    throw new ChannelPluginError(plugin, fn, "malformed", `cannot encode the input: ${errorMessage(err)}`);
  }
  const outcome = await run(site, { export: fn }, fn, payload, signal);
  if (!outcome.ok) {
    failed(site, "channel", outcome.kind);
    throw new ChannelPluginError(plugin, fn, outcome.kind, failureReason(plugin, outcome.message));
  }
  let value: unknown;
  try {
    if (outcome.output.length === 0) throw new Error("no output");
    value = pluginEnvelope.unpack(outcome.output);
  } catch (err) {
    failed(site, "channel", "malformed");
    throw new ChannelPluginError(plugin, fn, "malformed", `output is not MessagePack (${errorMessage(err)})`);
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    failed(site, "channel", "malformed");
    throw new ChannelPluginError(
      plugin,
      fn,
      "malformed",
      `output is not a MessagePack map (got ${value === null ? "nil" : Array.isArray(value) ? "an array" : typeof value})`,
    );
  }
  return { value, effects: outcome.effects ?? [] };
}

/** A tool's `{content, isError}` output, or why it is not one. */
function decodeResult(bytes: Uint8Array): ToolResult | string {
  let value: unknown;
  try {
    value = pluginEnvelope.unpack(bytes);
  } catch (err) {
    return `output is not MessagePack (${errorMessage(err)})`;
  }
  if (typeof value !== "object" || value === null) return "output is not a {content, isError} map";
  const { content, isError } = value as Record<string, unknown>;
  if (typeof content !== "string") return "output field 'content' is not a string";
  if (typeof isError !== "boolean") return "output field 'isError' is not a boolean";
  return { content, isError };
}

/** A copy of `value` without `undefined` fields (msgpackr would write them as an extension type). */
function withoutUndefined(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUndefined);
  if (value === null || typeof value !== "object" || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== undefined) out[k] = withoutUndefined(v);
  return out;
}
