// Plugin lifecycle hooks (docs/hooks.md): the runner (order, timeout, failure mode), their
// meaning (lifecycle.ts), the tool gate every tool dispatch passes (tool-gate.ts) and the
// wiring into a turn (turn-wiring.ts).
import type { Logger } from "pino";
import type { HooksConfig } from "../../config/index.js";
import type { HookHost } from "../../plugins/index.js";
import { LifecycleHooks } from "./lifecycle.js";
import { HookRunner, type HookCallReport } from "./runner.js";

export { LifecycleHooks, type MessageVerdict, type ToolVerdict } from "./lifecycle.js";
export { answerOutcome, HookFailedError, HookRunner, type HookCallReport, type HookContext, type HookOutcome, type HookRunnerOptions } from "./runner.js";
export { gateToolDispatch, denialResult, type ToolGateOptions, type TurnApprovals } from "./tool-gate.js";
export { hookContext } from "./turn-wiring.js";

/** The gateway's hooks over its plugin host, with `[hooks]` read at each call. */
export function createLifecycleHooks(o: { host: HookHost; config: () => HooksConfig; logger: Logger; onCall?: (r: HookCallReport) => void }): LifecycleHooks {
  return new LifecycleHooks(new HookRunner(o));
}
