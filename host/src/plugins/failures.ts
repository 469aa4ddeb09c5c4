// Why a plugin call produced no usable result, in words: the one place that turns a failure kind
// into the text a model (tool result) or an operator (channel error, log) reads.
import { errorMessage } from "../util/index.js";
import type { CallFailureKind } from "./sandbox/types.js";
import type { ChannelExport } from "./types.js";

/** Why a channel plugin call failed: `kind` classifies it, `reason` is the detail. */
export type ChannelFailureKind = "not_loaded" | "no_export" | "malformed" | Exclude<CallFailureKind, "aborted">;

/** What failed: one tool of a plugin, or one export of a channel plugin. */
export type FailedCall = { plugin: string; tool: string } | { plugin: string; export: ChannelExport };

/** What happened, after `plugin '<name>'` (tool calls put `on tool '<tool>'` after it). */
const WHAT: Record<ChannelFailureKind, string> = {
  not_loaded: "is not available",
  no_export: "lacks the export",
  malformed: "returned malformed output",
  timeout: "timed out",
  memory: "ran out of memory",
  trap: "crashed",
  plugin_error: "failed",
  output_too_large: "returned too much output",
  busy: "is busy",
  closed: "was unloaded",
};

/**
 * The sandbox's failure message without its own `plugin '<plugin>'` prefix (`plugin 'x': why`
 * or `plugin 'x' is busy: ...`), so that the message built around it does not repeat the name.
 */
export function failureReason(plugin: string, message: string): string {
  const p = `plugin '${plugin}'`;
  if (message.startsWith(`${p}: `)) return message.slice(p.length + 2);
  if (message.startsWith(`${p} `)) return message.slice(p.length + 1);
  return message;
}

/**
 * The message of a failed plugin call; never holds a stack or a secret (`reason` is the sandbox's
 * text or the plugin's own error text).
 * - tool calls (the model reads it as the tool result): `plugin '<plugin>' <what> on tool '<tool>': <reason>`;
 *   `busy` says the tool was not run and to try again later, `closed` that the plugin was unloaded;
 * - channel calls: `channel plugin '<plugin>' <what> (export '<export>'): <reason>`.
 * @param reason the detail, already without the `plugin '<plugin>'` prefix (see {@link failureReason})
 */
export function failureMessage(call: FailedCall, kind: ChannelFailureKind, reason: string): string {
  const p = `plugin '${call.plugin}'`;
  if ("export" in call) return `channel ${p} ${WHAT[kind]} (export '${call.export}'): ${reason}`;
  const t = `tool '${call.tool}'`;
  switch (kind) {
    case "busy":
      return `${p} is busy; ${t} was not run (${reason.replace(/^is busy: /, "")}); try again later`;
    case "closed":
      return `${p} was unloaded before ${t} could run`;
    case "output_too_large":
      return `${p} ${WHAT[kind]} for ${t}: ${reason}`;
    default:
      return `${p} ${WHAT[kind]} on ${t}: ${reason}`;
  }
}

/**
 * A channel plugin call that produced no usable output. The message reads
 * `channel plugin '<plugin>' <what happened> (export '<export>'): <reason>` (see {@link failureMessage}).
 */
export class ChannelPluginError extends Error {
  constructor(
    readonly plugin: string,
    readonly exportName: ChannelExport,
    readonly kind: ChannelFailureKind,
    readonly reason: string,
  ) {
    super(failureMessage({ plugin, export: exportName }, kind, reason));
    this.name = "ChannelPluginError";
  }
}

/**
 * A tool or channel call ended because the caller's `AbortSignal` fired (a cancelled turn, a
 * stopping poller), not because the plugin misbehaved: it is not a timeout and is not counted as
 * a plugin error. `cause` is the signal's reason; the message reads
 * `plugin '<plugin>': the call to <tool 'x' | export 'x'> was aborted by the caller (<reason>)`
 * (without the plugin for a tool name that is not routed).
 */
export class PluginCallAbortedError extends Error {
  readonly kind = "aborted";
  constructor(
    /** The plugin's name; null when the tool name is not routed to a plugin. */
    readonly plugin: string | null,
    /** The tool name, or the channel export. */
    readonly target: { tool: string } | { export: ChannelExport },
    reason: unknown,
  ) {
    const what = "tool" in target ? `tool '${target.tool}'` : `export '${target.export}'`;
    super(`${plugin === null ? "" : `plugin '${plugin}': `}the call to ${what} was aborted by the caller (${errorMessage(reason)})`, { cause: reason });
    this.name = "PluginCallAbortedError";
  }
}

/** Whether `err` is a plugin call the caller aborted (not a timeout, not a plugin fault). */
export function isAborted(err: unknown): err is PluginCallAbortedError {
  return err instanceof PluginCallAbortedError;
}

/**
 * Whether a channel plugin call was refused because every instance of the plugin is taken and
 * its queue is full (kind `busy`): a moment's overload, worth trying again shortly.
 */
export function isPluginBusy(err: unknown): boolean {
  return err instanceof ChannelPluginError && err.kind === "busy";
}

/**
 * Whether a failed channel plugin call will fail again however often it is retried: the plugin
 * crashed on it (`trap`, `memory`), returned something unusable (`malformed`,
 * `output_too_large`), lacks the export (`no_export`), or reported the failure as permanent (its
 * error text starts with `permanent:`: the plugin SDK's `channelPermanentError`, the plugins'
 * wire convention). Anything else, and anything that is not a ChannelPluginError, is transient.
 */
export function isPermanentChannelFailure(err: unknown): boolean {
  if (!(err instanceof ChannelPluginError)) return false;
  switch (err.kind) {
    case "trap":
    case "memory":
    case "malformed":
    case "output_too_large":
    case "no_export":
      return true;
    case "plugin_error":
      return /^permanent:/i.test(err.reason.trimStart());
    default:
      return false;
  }
}
