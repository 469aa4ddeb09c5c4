import type { ProviderCallTelemetry, Telemetry, ToolCallTelemetry, TurnTelemetry } from "./types.js";

const NOOP_CALL: ProviderCallTelemetry & ToolCallTelemetry = { end() {} };
const NOOP_TURN: TurnTelemetry = { providerCall: () => NOOP_CALL, toolCall: () => NOOP_CALL, end() {} };

/** The sink that records nothing (`[metrics] enabled = false`, and every component's default). */
export const NOOP_TELEMETRY: Telemetry = {
  enabled: false,
  turn: () => NOOP_TURN,
  pluginCall() {},
  pluginCallFailed() {},
  sandboxRestart() {},
  providerSwitch() {},
  webhookRequest() {},
  connections() {},
};
