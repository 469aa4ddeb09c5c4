/**
 * Fixtures shared by the channels service tests (in process, with a fake channel plugin named
 * `fake`): the channel's configuration and an empty webhook request for it.
 */
import type { WebhookHttpRequest } from "../../host/src/channels/service.js";
import { CHANNEL_DEFAULTS, type ChannelConfig } from "../../host/src/config/types.js";

/** Channel `chat` on plugin `fake`, everyone allowed, account `default`, the default limits. */
export const FAKE_CHANNEL: ChannelConfig = {
  name: "chat",
  plugin: "fake",
  allow: ["*"],
  accounts: ["default"],
  maxMessageBytes: CHANNEL_DEFAULTS.maxMessageBytes,
  maxAttachments: CHANNEL_DEFAULTS.maxAttachments,
  maxBodyBytes: CHANNEL_DEFAULTS.maxBodyBytes,
};

/** An empty POST to `/webhook/chat` from loopback (the fake plugin's `parse` decides what it holds). */
export const FAKE_WEBHOOK: WebhookHttpRequest = {
  channel: "chat",
  account: "default",
  method: "POST",
  path: "",
  query: "",
  headers: {},
  body: new Uint8Array(),
  remoteAddress: "127.0.0.1",
};
