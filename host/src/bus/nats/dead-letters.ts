/**
 * Dead letters of the NATS bus: the stream `EXOCLAW_DLQ` (subjects
 * `exoclaw.dlq.<stream>.<durable>`), listed, replayed and purged by stream sequence. Every
 * operation needs NATS to be reachable.
 */
import { decodePayload, encodePayload, REPLAY_OF_HEADER } from "../codec.js";
import { replayMsgId } from "../dlq-file.js";
import { BusError } from "../errors.js";
import type { DeadLetter, DeadLetterStore, PublishAck, PublishOptions, ReplayResult } from "../types.js";
import type { Connection } from "./connection.js";
import type { JetStreamManager } from "@nats-io/jetstream";
import { DLQ_STREAM, DLQ_SUBJECT_PREFIX } from "./options.js";

/** A payload for a dead letter's `data`: decoded when it decodes, else the raw bytes. */
export function safeDecode(payload: Uint8Array): unknown {
  try {
    return decodePayload(payload);
  } catch {
    return payload;
  }
}

/** Options of {@link NatsDeadLetters}. */
export interface NatsDeadLettersOptions {
  connection: Connection;
  /** The bus's publish, for replays (they take the normal publish path, spool included). */
  publish: (subject: string, data: unknown, options: PublishOptions) => Promise<PublishAck>;
}

/** Dead letters in the `EXOCLAW_DLQ` stream; ids are stream sequences. Needs NATS to be reachable. */
export class NatsDeadLetters implements DeadLetterStore {
  constructor(private readonly o: NatsDeadLettersOptions) {}

  private jsm(): JetStreamManager {
    const { connection } = this.o;
    if (!connection.ready || !connection.infra) throw new BusError("unavailable", "NATS is not connected; dead letters live in JetStream");
    return connection.infra.jsm;
  }

  /** @internal */
  async add(entry: Omit<DeadLetter, "id">): Promise<void> {
    const js = this.o.connection.infra?.js;
    if (!js || !this.o.connection.ready) throw new BusError("unavailable", "NATS is not connected");
    await js.publish(`${DLQ_SUBJECT_PREFIX}.${entry.stream}.${entry.consumer}`, encodePayload(entry), { msgID: `dlq/${entry.consumer}/${entry.msgId}` });
  }

  private async get(seq: number): Promise<DeadLetter | undefined> {
    try {
      const m = await this.jsm().streams.getMessage(DLQ_STREAM, { seq });
      if (!m) return undefined;
      return { ...(decodePayload(m.data) as Omit<DeadLetter, "id">), id: String(seq) };
    } catch (err) {
      if (err instanceof BusError) throw err;
      return undefined; // deleted
    }
  }

  async list(options: { limit?: number; consumer?: string } = {}): Promise<DeadLetter[]> {
    const info = await this.jsm().streams.info(DLQ_STREAM);
    const out: DeadLetter[] = [];
    const limit = options.limit ?? Infinity;
    if (info.state.messages === 0) return out;
    for (let seq = info.state.first_seq; seq <= info.state.last_seq && out.length < limit; seq++) {
      const e = await this.get(seq);
      if (e && (options.consumer === undefined || e.consumer === options.consumer)) out.push(e);
    }
    return out;
  }

  async count(): Promise<number> {
    return (await this.jsm().streams.info(DLQ_STREAM)).state.messages;
  }

  private async select(ids: readonly string[] | undefined): Promise<DeadLetter[]> {
    if (ids === undefined) return this.list();
    const out: DeadLetter[] = [];
    for (const id of ids) {
      const seq = Number(id);
      const e = Number.isInteger(seq) && seq > 0 ? await this.get(seq) : undefined;
      if (!e) throw new BusError("not_found", `no dead letter with id ${JSON.stringify(id)}`);
      out.push(e);
    }
    return out;
  }

  async replay(ids?: readonly string[]): Promise<ReplayResult[]> {
    const chosen = await this.select(ids);
    const results: ReplayResult[] = [];
    for (const e of chosen) {
      const msgId = replayMsgId(e.msgId, e.id);
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(e.headers)) if (!/^nats-|^exoclaw-published-at$|^exoclaw-spooled$/i.test(k)) headers[k] = v;
      headers[REPLAY_OF_HEADER] = e.msgId;
      const ack = await this.o.publish(e.subject, e.data, { msgId, headers });
      await this.jsm().streams.deleteMessage(DLQ_STREAM, Number(e.id), false);
      results.push({ id: e.id, msgId, ack });
    }
    return results;
  }

  async purge(ids?: readonly string[]): Promise<number> {
    if (ids === undefined) {
      const r = await this.jsm().streams.purge(DLQ_STREAM);
      return r.purged;
    }
    const chosen = await this.select(ids);
    for (const e of chosen) await this.jsm().streams.deleteMessage(DLQ_STREAM, Number(e.id), false);
    return chosen.length;
  }
}
