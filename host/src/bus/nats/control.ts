/**
 * Stopping a turn that runs in another gateway (`chat.abort`, a channel peer's `/stop`; docs/bus.md,
 * "Stopping a turn on another gateway"). A turn runs where its message was consumed (the owner of
 * the peer's partition) or where its WebSocket client is connected, which need not be the gateway
 * that was asked to stop it. Every gateway answers requests on the core NATS subject
 * {@link ABORT_SUBJECT} (not JetStream: a stop request is worth nothing later, so nothing is
 * stored or redelivered); the asking gateway sends one request and collects the answers:
 *
 * - request (MessagePack): `{v: 1, from: <instance id>, by: "chat.abort" | "stop_command",
 *   runId? | sessionKey?, account?}` — `account` restricts a `runId` request to that client's
 *   own `ws` sessions (a client with scope `chat` only; the asker checked a `sessionKey` itself);
 * - answer: `{v: 1, from, aborted: string[], denied?: true}` from every other gateway
 *   (`aborted` empty when nothing ran there; `denied` when the run is another client's).
 *
 * The asker stops collecting at the first answer that stopped something (a turn runs in one
 * place), else when no answer came for `stallMs` after the last one, or after `maxWaitMs`.
 */
import type { NatsConnection, Subscription } from "@nats-io/transport-node";
import { decodePayload, encodePayload } from "../codec.js";
import { errorMessage } from "../../util/index.js";

/** Core NATS subject of stop requests. */
export const ABORT_SUBJECT = "exoclaw.ctl.abort";

/** Who asks to stop a turn (the runtime's `StoppedBy`). */
export type AbortBy = "chat.abort" | "stop_command";

/** A stop request: exactly one of `runId` and `sessionKey`. */
export interface AbortRequest {
  by: AbortBy;
  runId?: string;
  sessionKey?: string;
  /** Only a `ws` session of this account may be stopped (see the module comment). */
  account?: string;
}

/** What one gateway did with a stop request. */
export interface AbortAnswer {
  aborted: string[];
  denied?: boolean;
}

/** What {@link AbortRelay} needs of the bus. */
export interface AbortRelayBus {
  readonly instanceId: string;
  readonly ready: boolean;
  readonly nc: NatsConnection | undefined;
  onEachReady(listener: () => void): () => void;
}

/** Options of {@link AbortRelay}. */
export interface AbortRelayOptions {
  bus: AbortRelayBus;
  /** Stops what runs here (never throws). */
  handle: (request: AbortRequest) => AbortAnswer;
  /** Wait for the first answers at most, ms; default 3,000. */
  maxWaitMs?: number;
  /** Stop collecting when no answer came for this long after the last, ms; default 500. */
  stallMs?: number;
  onWarning?: (message: string, error?: unknown) => void;
}

/** Checks a decoded request; a string says what is wrong. */
function checkRequest(v: unknown): (AbortRequest & { from: string }) | string {
  if (typeof v !== "object" || v === null) return "not a map";
  const r = v as Record<string, unknown>;
  if (r.v !== 1) return `unknown version ${String(r.v)}`;
  if (typeof r.from !== "string") return "from must be a string";
  if (r.by !== "chat.abort" && r.by !== "stop_command") return "by must be chat.abort or stop_command";
  const hasRun = typeof r.runId === "string" && r.runId.length > 0;
  const hasSession = typeof r.sessionKey === "string" && r.sessionKey.length > 0;
  if (hasRun === hasSession) return "exactly one of runId and sessionKey";
  if (r.account !== undefined && typeof r.account !== "string") return "account must be a string";
  return {
    from: r.from,
    by: r.by,
    ...(hasRun ? { runId: r.runId as string } : { sessionKey: r.sessionKey as string }),
    ...(typeof r.account === "string" ? { account: r.account } : {}),
  };
}

/** Answers stop requests of the other gateways and sends this one's; see the module comment. */
export class AbortRelay {
  private sub: Subscription | undefined;
  private nc: NatsConnection | undefined;
  private readonly off: () => void;

  constructor(private readonly options: AbortRelayOptions) {
    this.off = options.bus.onEachReady(() => this.subscribe());
  }

  private subscribe(): void {
    const nc = this.options.bus.nc;
    if (nc === undefined || nc === this.nc) return;
    this.sub?.unsubscribe();
    this.nc = nc;
    const me = this.options.bus.instanceId;
    this.sub = nc.subscribe(ABORT_SUBJECT, {
      callback: (err, msg) => {
        if (err) return;
        let req: ReturnType<typeof checkRequest>;
        try {
          req = checkRequest(decodePayload(msg.data));
        } catch (e) {
          req = errorMessage(e);
        }
        if (typeof req === "string") {
          this.options.onWarning?.(`malformed stop request on ${ABORT_SUBJECT}: ${req}`);
          return;
        }
        if (req.from === me) return; // the asker tried its own turns first
        const answer = this.options.handle(req);
        msg.respond(encodePayload({ v: 1, from: me, aborted: answer.aborted, ...(answer.denied ? { denied: true } : {}) }));
      },
    });
  }

  /**
   * Asks the other gateways to stop a turn. Never throws: with NATS unreachable, no gateway
   * answering, or a broken answer, it resolves with what was collected (empty: nothing stopped).
   */
  async request(request: AbortRequest): Promise<AbortAnswer> {
    const nc = this.options.bus.nc;
    const out: AbortAnswer = { aborted: [] };
    if (!this.options.bus.ready || nc === undefined) {
      this.options.onWarning?.("stop request not sent to the other gateways: NATS is not connected");
      return out;
    }
    try {
      const answers = await nc.requestMany(ABORT_SUBJECT, encodePayload({ v: 1, from: this.options.bus.instanceId, ...request }), {
        strategy: "stall",
        maxWait: this.options.maxWaitMs ?? 3_000,
        stall: this.options.stallMs ?? 500,
      });
      for await (const m of answers) {
        const a = decodePayload(m.data) as { aborted?: unknown; denied?: unknown };
        if (a.denied === true) out.denied = true;
        if (Array.isArray(a.aborted) && a.aborted.length > 0) {
          out.aborted.push(...a.aborted.filter((x): x is string => typeof x === "string"));
          break;
        }
      }
    } catch (err) {
      // No responders (the only gateway), a timeout, a malformed answer: nothing more was stopped.
      if (!/no responders/i.test(errorMessage(err))) this.options.onWarning?.("stop request to the other gateways failed", err);
    }
    return out;
  }

  /** Stops answering. */
  close(): void {
    this.off();
    this.sub?.unsubscribe();
    this.sub = undefined;
  }
}
