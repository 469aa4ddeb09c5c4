/**
 * A request/answer relay between the gateways of a bus over one core NATS subject (not
 * JetStream: a request is worth nothing later, so nothing is stored or redelivered). Every
 * gateway answers requests on the subject; the asking gateway sends one request and collects the
 * answers. The stop requests of control.ts and the approval answers of approval-relay.ts run on it.
 *
 * Wire format (MessagePack, bus/codec.ts): request `{v: 1, from: <instance id>, ...payload}`,
 * answer `{v: 1, from: <instance id>, ...fields}`. No gateway answers its own request (the asker
 * handled its own part locally first). Requests that fail the caller's check are reported to
 * `onWarning` and left unanswered.
 *
 * Collecting stops when `each` returns true for an answer, when no answer came for `stallMs`
 * after the last one, or after `maxWaitMs` (nats.js `requestMany`, strategy "stall").
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodePayload, encodePayload } from "../codec.js";
import { errorMessage } from "../../util/index.js";

/** What a {@link RequestRelay} needs of the bus. */
export interface RequestRelayBus {
  readonly instanceId: string;
  readonly ready: boolean;
  readonly nc: NatsConnection | undefined;
  /** Calls `listener` now when ready and on every (re)connection; returns the unsubscribe. */
  onEachReady(listener: () => void): () => void;
}

/** A request as received, after the caller's check: who sent it, plus what it asks. */
export type Relayed<R> = R & { from: string };

/** Options of {@link RequestRelay}; `R` is the checked request. */
export interface RequestRelayOptions<R> {
  bus: RequestRelayBus;
  /** The core NATS subject, e.g. "exoclaw.ctl.abort". */
  subject: string;
  /** What a request is called in warnings, e.g. "stop request". */
  what: string;
  /**
   * Checks a decoded request (the whole map, `v` included): the request, or a string saying
   * what is wrong. Must check `v === 1` and that `from` is a string.
   */
  check: (value: unknown) => Relayed<R> | string;
  /**
   * This gateway's answer to another gateway's request: the answer's fields (without `v` and
   * `from`), or a promise of them. A throw or rejection is reported to `onWarning` and not answered.
   */
  answer: (request: Relayed<R>) => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Wait for answers at most, ms; default 3,000. */
  maxWaitMs?: number;
  /** Stop collecting when no answer came for this long after the last, ms; default 500. */
  stallMs?: number;
  onWarning?: (message: string, error?: unknown) => void;
}

/** Answers the other gateways' requests on one subject and sends this one's; see the module comment. */
export class RequestRelay<R> {
  private sub: Subscription | undefined;
  private nc: NatsConnection | undefined;
  private readonly off: () => void;

  constructor(private readonly options: RequestRelayOptions<R>) {
    this.off = options.bus.onEachReady(() => this.subscribe());
    this.subscribe();
  }

  /** Subscribes on the bus's current connection (once per connection). */
  private subscribe(): void {
    const nc = this.options.bus.nc;
    if (nc === undefined || nc === this.nc) return;
    this.sub?.unsubscribe();
    this.nc = nc;
    const { subject, what } = this.options;
    const me = this.options.bus.instanceId;
    this.sub = nc.subscribe(subject, {
      callback: (err, msg) => {
        if (err) return;
        let req: Relayed<R> | string;
        try {
          req = this.options.check(decodePayload(msg.data));
        } catch (e) {
          req = errorMessage(e);
        }
        if (typeof req === "string") {
          this.options.onWarning?.(`malformed ${what} on ${subject}: ${req}`);
          return;
        }
        if (req.from === me) return;
        const respond = (fields: Record<string, unknown>) => msg.respond(encodePayload({ v: 1, from: me, ...fields }));
        const fail = (e: unknown) => this.options.onWarning?.(`cannot answer a ${what} of another gateway`, e);
        try {
          const answer = this.options.answer(req);
          if (answer instanceof Promise) answer.then(respond, fail);
          else respond(answer);
        } catch (e) {
          fail(e);
        }
      },
    });
  }

  /**
   * Sends `{v: 1, from, ...payload}` and hands each answer that is a map to `each` until it
   * returns true (or collecting stops; see the module comment). Never throws: with NATS
   * unreachable, no gateway answering (no responders), a timeout or a broken answer it returns
   * after what was collected, reporting all but "no responders" to `onWarning`.
   */
  async ask(payload: Record<string, unknown>, each: (answer: Record<string, unknown>) => boolean): Promise<void> {
    const { bus, subject, what } = this.options;
    const nc = bus.nc;
    if (!bus.ready || nc === undefined) {
      this.options.onWarning?.(`${what} not sent to the other gateways: NATS is not connected`);
      return;
    }
    try {
      const answers = await nc.requestMany(subject, encodePayload({ v: 1, from: bus.instanceId, ...payload }), {
        strategy: "stall",
        maxWait: this.options.maxWaitMs ?? 3_000,
        stall: this.options.stallMs ?? 500,
      });
      for await (const m of answers) {
        const a = decodePayload(m.data);
        if (typeof a === "object" && a !== null && each(a as Record<string, unknown>)) break;
      }
    } catch (err) {
      // No responders (the only gateway), a timeout, a malformed answer: nothing more came.
      if (!/no responders/i.test(errorMessage(err))) this.options.onWarning?.(`${what} to the other gateways failed`, err);
    }
  }

  /** Stops answering. */
  close(): void {
    this.off();
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}
