/**
 * The NATS stores channels use on a bus beyond pairing and rates (shared-state.ts): the streamed
 * replies' message ids (stream-kv.ts, KV) and large inbound images (media-objects.ts, Object
 * Store). Each is opened on first use, through a dynamic import (the NATS client is loaded only
 * for a NATS bus); with the in-process bus, or none, both are undefined.
 */
import type { Bus, NatsBus } from "../bus/index.js";
import type { MediaObjects } from "./bus-media.js";
import type { SharedStreamedReplies } from "./stream-kv.js";

/** Lazily opened stores (see the module comment). */
export interface BusStores {
  streamed(): Promise<SharedStreamedReplies | undefined>;
  media(): Promise<MediaObjects | undefined>;
}

/** The stores of `bus` (undefined or in-process: none). */
export function busStores(bus: Bus | undefined): BusStores {
  const nats = bus?.kind === "nats" ? (bus as NatsBus) : undefined;
  let streamed: Promise<SharedStreamedReplies | undefined> | undefined;
  let media: Promise<MediaObjects | undefined> | undefined;
  return {
    streamed: () =>
      (streamed ??= nats === undefined ? Promise.resolve(undefined) : import("./stream-kv.js").then(({ KvStreamedReplies }) => new KvStreamedReplies(nats))),
    media: () =>
      (media ??= nats === undefined ? Promise.resolve(undefined) : import("./media-objects.js").then(({ NatsMediaObjects }) => new NatsMediaObjects(nats))),
  };
}
