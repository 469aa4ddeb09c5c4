/**
 * One partition a subscription holds the lease of: pulls its JetStream consumer `<durable>-p<k>`
 * and feeds the deliveries to a Dispatcher (dispatcher.ts) in stream order, through the reorder
 * window (reorder.ts). Deliveries this runner cannot have seen yet (a previous holder's, or ones
 * lost on the way) hold newer ones back until they are redelivered (the guard below). On hand-over
 * it finishes running handlers and naks the rest in stream order; on a lost lease it just stops.
 */
import { millis, type MsgHdrs } from "@nats-io/transport-node";
import type { Consumer, JsMsg } from "@nats-io/jetstream";
import { MSG_ID_HEADER, PUBLISHED_AT_HEADER, SPOOLED_HEADER } from "../codec.js";
import type { Delivery, Dispatcher } from "../dispatcher.js";
import { BusError } from "../errors.js";
import { ReorderBuffer } from "../reorder.js";
import { logicalSubject } from "../subjects.js";
import { sleep } from "../../util/index.js";
import { NATS_STREAMS } from "./options.js";
import type { PartitionOwner } from "./owners.js";

function hdrsToRecord(h: MsgHdrs | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!h) return out;
  for (const k of h.keys()) out[k] = h.get(k);
  return out;
}

/** One owned partition of a subscription. */
export class PartitionRunner {
  readonly dispatcher: Dispatcher<unknown>;
  private stopped = false;
  private abandoned = false;
  private readonly loop: Promise<void>;
  private stash: Delivery[] = [];
  /**
   * Set while deliveries this runner never received are still unacknowledged on the server: a
   * previous holder's (at start) or ones lost on the way (a connection dropped or a fetch stopped
   * while the server was sending). The server redelivers them only after the ack wait, and
   * meanwhile sends newer messages: those wait in the stash until `missing` redeliveries of
   * messages not already held (`known`) arrived, or until `deadline` (ms since the epoch), so
   * the handler still sees stream order per subject.
   */
  private guard: { missing: number; deadline: number; known: Set<number> } | undefined;
  /** Consumer delivery sequence of the last delivery received; a jump means deliveries were lost. */
  private lastDeliverySeq = 0;
  /** Deliveries held by the reorder window (reorder.ts), on their way to the dispatcher. */
  private readonly reorder: ReorderBuffer<Delivery>;

  constructor(
    private readonly sub: PartitionOwner,
    readonly k: number,
  ) {
    this.dispatcher = sub.newDispatcher();
    this.reorder = new ReorderBuffer(sub.bus.reorder, (sorted) => {
      for (const d of sorted) this.dispatcher.push(d);
    });
    this.loop = this.run();
  }

  private async consumer(): Promise<Consumer> {
    const js = this.sub.bus.js;
    if (!js) throw new BusError("unavailable", "NATS is not connected");
    return js.consumers.get(NATS_STREAMS[this.sub.stream], this.sub.consumerName(this.k));
  }

  private async run(): Promise<void> {
    const bus = this.sub.bus;
    let consumer: Consumer | undefined;
    let guarded = false;
    while (!this.stopped) {
      if (!bus.ready) {
        await Promise.race([bus.whenReady(), sleep(500)]);
        continue;
      }
      try {
        consumer ??= await this.consumer();
        if (!guarded) {
          // messages still pending on this consumer belong to a previous holder: take them first
          const info = await consumer.info(); // fresh, not the cached copy
          if (info.num_ack_pending > 0) this.expect(info.num_ack_pending);
          // deliveries after this point that do not reach this runner (a previous holder still
          // pulling, or lost on the way) show up as gaps in the delivery sequence
          this.lastDeliverySeq = info.delivered.consumer_seq;
          guarded = true;
        }
        if (this.guard && Date.now() > this.guard.deadline) this.flushStash();
        const window = this.dispatcher.window;
        const batch = Math.min(window.free, Math.max(1, Math.ceil(window.max / Math.max(1, this.sub.ownedCount()))), 64);
        if (batch <= 0 && !this.guard) {
          await this.dispatcher.room();
          continue;
        }
        const n = Math.max(1, batch);
        window.reserved += n;
        try {
          // idle heartbeats end the fetch when the server goes away mid-pull; the watchdog is the
          // last resort (a pull whose 408 never comes must not stall the partition)
          const iter = await consumer.fetch({ max_messages: n, expires: 1_000, idle_heartbeat: 500 });
          const watchdog = setTimeout(() => void iter.stop(), 4_000);
          try {
            for await (const m of iter) this.deliver(m);
          } finally {
            clearTimeout(watchdog);
          }
        } finally {
          window.reserved -= n;
          window.wake();
        }
      } catch (err) {
        if (this.stopped) break;
        bus.warn(`partition ${this.k} of ${this.sub.durable}: fetch failed`, err);
        consumer = undefined;
        await sleep(250);
      }
    }
  }

  private deliver(m: JsMsg): void {
    const h = hdrsToRecord(m.headers);
    const d: Delivery = {
      subject: logicalSubject(m.subject),
      stream: this.sub.stream,
      msgId: h[MSG_ID_HEADER] ?? `seq:${m.seq}`,
      payload: m.data,
      headers: h,
      seq: m.seq,
      deliveryCount: m.info.deliveryCount,
      publishedAt: Number(h[PUBLISHED_AT_HEADER]) || millis(m.info.timestampNanos),
      handle: m,
    };
    if (this.stopped) {
      // fetched after a stop was requested: handed back with the rest
      this.stash.push(d);
      return;
    }
    // The consumer numbers its deliveries 1, 2, 3, ... (redeliveries included) and this is the
    // only runner pulling from it: a gap is deliveries sent and never received (the connection
    // dropped, or a fetch was stopped, while they were on the way). Each is a message now pending
    // on the server that comes back only after the ack wait, behind newer ones like this one.
    const dseq = m.info.deliverySequence;
    // (A number at or below the last one means the consumer was re-created — the server lost its
    // state — and starts over from the first message of the stream, in order: nothing is missing.)
    if (dseq > this.lastDeliverySeq + 1) this.expect(dseq - this.lastDeliverySeq - 1);
    this.lastDeliverySeq = dseq;
    if (this.guard) {
      this.stash.push(d);
      // a redelivery of a message already held is not one of the missing ones
      if (m.info.redelivered && !this.guard.known.has(d.seq)) {
        this.guard.known.add(d.seq);
        this.guard.missing--;
      }
      if (this.guard.missing <= 0) this.flushStash();
      return;
    }
    this.toDispatcher(d);
  }

  /** Passes a delivery on in stream order, through the reorder window. */
  private toDispatcher(d: Delivery): void {
    // out of a spool: other processes' spools may be draining too (an outage just ended)
    if (d.headers[SPOOLED_HEADER] !== undefined) this.sub.bus.reorder.extend();
    if (!this.reorder.offer(d)) this.dispatcher.push(d);
  }

  /** Starts (or extends) the guard: `n` more unacknowledged messages are on their way back. */
  private expect(n: number): void {
    const deadline = Date.now() + 2 * this.sub.bus.ackWaitMs + 2_000;
    const g = (this.guard ??= { missing: 0, deadline, known: new Set() });
    g.missing += n;
    g.deadline = Math.max(g.deadline, deadline);
    for (const d of this.dispatcher.heldDeliveries()) g.known.add(d.seq);
    for (const d of this.stash) g.known.add(d.seq);
    for (const d of this.reorder.held) g.known.add(d.seq);
  }

  private flushStash(): void {
    this.guard = undefined;
    const all = this.stash.sort((a, b) => a.seq - b.seq);
    this.stash = [];
    for (const d of all) this.toDispatcher(d);
  }

  /** Extends the ack deadline of everything held. */
  heartbeat(): void {
    if (this.abandoned) return;
    for (const d of this.dispatcher.heldDeliveries()) (d.handle as JsMsg).working();
    for (const d of this.stash) (d.handle as JsMsg).working();
    for (const d of this.reorder.held) (d.handle as JsMsg).working();
  }

  /** Graceful hand-over: finish running handlers, nak the rest in stream order. */
  async release(): Promise<void> {
    this.stopped = true;
    // no new handler attempts from now; a fetch still in progress lands in the stash
    const held = this.reorder.take();
    const handedBack = await this.dispatcher.stop();
    await this.loop;
    const unsettled = [...handedBack, ...this.stash, ...held].sort((a, b) => a.seq - b.seq);
    this.stash = [];
    for (const d of unsettled) (d.handle as JsMsg).nak();
    await this.sub.bus.nc?.flush().catch(() => {});
  }

  /** Lease lost: stop at once, let the server redeliver (no nak: the new holder may already run). */
  abandon(): void {
    this.stopped = true;
    this.abandoned = true;
    this.reorder.take(); // redelivered to the next holder
    void this.loop.then(() => this.dispatcher.stop()).catch(() => {});
  }
}
