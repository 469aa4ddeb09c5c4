/**
 * Streamed replies' message ids shared by every gateway on a NATS bus (`stream = "edit"` with
 * `[bus]`; docs/bus.md, "Progressive replies and typing across gateways"): the gateway that
 * runs a channel turn sends and edits the streamed message itself, and records the message's
 * platform id under the inbound message's bus id in the KV bucket {@link STREAM_BUCKET}. Any
 * gateway then finds it:
 * - the one that re-runs the turn after the first died (it edits that message instead of
 *   sending a new one);
 * - the one that publishes the reply of a replayed turn (the reply then carries `editOf`).
 * Entries expire after {@link STREAM_TTL_MS} (a reply owed that long goes out as a new message)
 * and are deleted once the reply's final edit went out.
 *
 * Value: JSON `{"channel", "account", "peer", "platformMessageId", "at"}` (stream-state.ts's
 * {@link StreamedReply}). Key: `r-` then the bus message id, escaped for KV (`kvKeyOf`).
 */
// Loaded only through a dynamic import (service.ts, with a NATS bus): this pulls in the NATS client.
import { KvCells, kvKeyOf, type KvCellsBus } from "../bus/nats/index.js";
import type { StreamedReply } from "./stream-state.js";

/** KV bucket of the streamed replies' message ids. */
export const STREAM_BUCKET = "exoclaw_streamed_replies";
/** How long an entry is kept, ms (a day: far past any turn, reply retry or redelivery). */
export const STREAM_TTL_MS = 24 * 60 * 60 * 1000;

/** The streamed messages of replies owed, by the inbound message's bus id (see the module comment). */
export interface SharedStreamedReplies {
  /** The streamed message of the reply to `msgId`, or undefined. @throws Error when NATS cannot be reached */
  get(msgId: string): Promise<StreamedReply | undefined>;
  /** Records it (overwrites). @throws Error when NATS cannot be reached */
  remember(msgId: string, entry: StreamedReply): Promise<void>;
  /** Drops it (the reply was delivered). Never throws. */
  forget(msgId: string): Promise<void>;
}

const keyOf = (msgId: string) => kvKeyOf("r-", msgId);

/** See the module comment. */
export class KvStreamedReplies implements SharedStreamedReplies {
  private readonly cells: KvCells;

  constructor(bus: KvCellsBus) {
    this.cells = new KvCells({ bus, bucket: STREAM_BUCKET, maxAgeMs: STREAM_TTL_MS });
  }

  async get(msgId: string): Promise<StreamedReply | undefined> {
    const bytes = await this.cells.get(keyOf(msgId));
    if (bytes === undefined) return undefined;
    try {
      const e = JSON.parse(Buffer.from(bytes).toString("utf8")) as Partial<StreamedReply>;
      if (typeof e.platformMessageId !== "string" || typeof e.channel !== "string" || typeof e.account !== "string" || typeof e.peer !== "string")
        return undefined;
      return { channel: e.channel, account: e.account, peer: e.peer, platformMessageId: e.platformMessageId, at: Number(e.at) || 0 };
    } catch {
      return undefined;
    }
  }

  async remember(msgId: string, entry: StreamedReply): Promise<void> {
    await (await this.cells.kv()).put(keyOf(msgId), JSON.stringify(entry));
  }

  async forget(msgId: string): Promise<void> {
    try {
      await (await this.cells.kv()).delete(keyOf(msgId));
    } catch {
      // Expires on its own (STREAM_TTL_MS).
    }
  }
}
