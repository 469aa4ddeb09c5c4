/**
 * The NATS JetStream Object Store of inbound images too large to travel inline on the bus
 * (bus-media.ts): bucket {@link MEDIA_BUCKET}, file storage, entries kept {@link MEDIA_TTL_MS}.
 * The bucket is created on first use (or opened when another gateway created it).
 */
// Loaded only through a dynamic import (service.ts, with a NATS bus): this pulls in the NATS client.
import { Objm, StorageType, type ObjectStore } from "@nats-io/obj";
import type { JetStreamClient } from "@nats-io/jetstream";
import { MEDIA_BUCKET, MEDIA_TTL_MS, type MediaObjects } from "./bus-media.js";

/** What the store needs of the bus: its JetStream client while NATS is ready (NatsBus). */
export interface MediaObjectsBus {
  readonly ready: boolean;
  readonly js: JetStreamClient | undefined;
}

/** See the module comment. */
export class NatsMediaObjects implements MediaObjects {
  private bucket: { js: JetStreamClient; os: Promise<ObjectStore> } | undefined;

  constructor(private readonly bus: MediaObjectsBus) {}

  private store(): Promise<ObjectStore> {
    const js = this.bus.js;
    if (!this.bus.ready || js === undefined) return Promise.reject(new Error("NATS is not connected"));
    if (this.bucket?.js !== js) {
      const objm = new Objm(js);
      const os = objm.create(MEDIA_BUCKET, { storage: StorageType.File, ttl: MEDIA_TTL_MS * 1_000_000 }).catch(() => objm.open(MEDIA_BUCKET));
      this.bucket = { js, os };
      os.catch(() => {
        if (this.bucket?.os === os) this.bucket = undefined;
      });
    }
    return this.bucket.os;
  }

  async put(name: string, bytes: Uint8Array): Promise<void> {
    const os = await this.store();
    // Content-addressed: an object already there has these bytes.
    const info = await os.info(name);
    if (info !== null && info.deleted !== true) return;
    await os.putBlob({ name }, bytes);
  }

  async get(name: string): Promise<Uint8Array | null> {
    return (await this.store()).getBlob(name);
  }
}
