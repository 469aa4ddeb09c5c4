// Public API of the channels service: webhooks and polls in, agent replies out, via channel plugins.
export { AllowlistError, compileAllowlist } from "./allowlist.js";
export type { Allowlist, AllowSubject } from "./allowlist.js";
export { createChannelService, failureReply } from "./service.js";
export type {
  ChannelCounters,
  ChannelOutboundTarget,
  FileSupport,
  FileTarget,
  ChannelPlugins,
  ChannelRuntime,
  ChannelService,
  ChannelServiceOptions,
  HttpAnswer,
  RecoveredChannelTurn,
  WebhookHttpRequest,
} from "./service.js";
export { cursorPath, readCursor, writeCursor } from "./cursor.js";
export { limitViolation, normalizeInbound } from "./messages.js";
export { createChannelBus, inboundMsgId, replyMsgId, inboundPayload, checkInboundPayload, checkOutboundPayload } from "./bus.js";
export type { ChannelBus, ChannelBusDeps, InboundPayload, OutboundPayload } from "./bus.js";
export type { Admission, ChannelLogger, IntakeRefusal, WebhookPolicy } from "./types.js";
export { PairingStore, PairingError, normalizeCode, PAIRING_FILE, PAIRING_CODE_TTL_MS, pairingRules, parsePairing, emptyPairing } from "./pairing.js";
export type { PairingApproval, PairingRequest, PairingPeer, PairingBook, PairingData, PairingAsk } from "./pairing.js";
export { openSharedChannelState } from "./shared-state.js";
export type { RateWindows } from "./gate.js";
export { SenderRateLimiter, takeWindow, type RateDecision, type RateWindow } from "./groups.js";
export { sendFileTool, fileFromInput, SEND_FILE, SEND_FILE_SPEC, MAX_CAPTION_CHARS } from "./send-file.js";
export type { FileChannels, SendFileToolOptions } from "./send-file.js";
