/**
 * Consumer-side dedupe of the NATS bus: the ids a durable has handled, in the KV bucket
 * `exoclaw_bus_dedupe` (shared by every process, so a redelivery to another process is caught)
 * behind an in-memory LRU front (dispatcher.ts's MemoryDedupe).
 */
import { createHash } from "node:crypto";
import type { KV } from "@nats-io/kv";
import { MemoryDedupe } from "../dispatcher.js";
import { BusError } from "../errors.js";
import type { DedupeStore } from "../types.js";

/** Handled ids in KV under SHA-256 keys (a message id may hold characters KV keys may not). */
export class KvDedupe implements DedupeStore {
  private readonly local = new MemoryDedupe();
  /** @param kv the dedupe bucket while NATS is ready, else undefined */
  constructor(private readonly kv: () => KV | undefined) {}
  private static key(k: string): string {
    return createHash("sha256").update(k).digest("base64url");
  }
  hasLocal(k: string): boolean {
    return this.local.hasLocal(k);
  }
  /** @throws BusError `unavailable` when NATS is not ready and the id is not in the front */
  async has(k: string): Promise<boolean> {
    if (this.local.hasLocal(k)) return true;
    const kv = this.kv();
    if (!kv) throw new BusError("unavailable", "NATS is not connected");
    const e = await kv.get(KvDedupe.key(k));
    const seen = !!e && e.operation === "PUT";
    if (seen) this.local.addSync(k);
    return seen;
  }
  /** @throws BusError `unavailable` when NATS is not ready */
  async add(k: string): Promise<void> {
    const kv = this.kv();
    if (!kv) throw new BusError("unavailable", "NATS is not connected");
    await kv.put(KvDedupe.key(k), "");
    this.local.addSync(k);
  }
}
