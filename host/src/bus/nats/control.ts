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
 * The relaying itself is request-relay.ts's.
 */
import { RequestRelay, type RequestRelayBus } from "./request-relay.js";

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
export type AbortRelayBus = RequestRelayBus;

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
  private readonly relay: RequestRelay<AbortRequest>;

  constructor(options: AbortRelayOptions) {
    this.relay = new RequestRelay<AbortRequest>({
      bus: options.bus,
      subject: ABORT_SUBJECT,
      what: "stop request",
      check: checkRequest,
      answer: (req) => {
        const answer = options.handle(req);
        return { aborted: answer.aborted, ...(answer.denied ? { denied: true } : {}) };
      },
      maxWaitMs: options.maxWaitMs,
      stallMs: options.stallMs,
      onWarning: options.onWarning,
    });
  }

  /**
   * Asks the other gateways to stop a turn. Never throws: with NATS unreachable, no gateway
   * answering, or a broken answer, it resolves with what was collected (empty: nothing stopped).
   */
  async request(request: AbortRequest): Promise<AbortAnswer> {
    const out: AbortAnswer = { aborted: [] };
    await this.relay.ask({ ...request }, (a) => {
      if (a.denied === true) out.denied = true;
      if (Array.isArray(a.aborted) && a.aborted.length > 0) {
        out.aborted.push(...a.aborted.filter((x): x is string => typeof x === "string"));
        return true;
      }
      return false;
    });
    return out;
  }

  /** Stops answering. */
  close(): void {
    this.relay.close();
  }
}
