/**
 * Answering a tool-call approval parked in another gateway (issue 19; docs/bus.md, "Approvals
 * answered at any gateway"). A turn parks in the process that runs it; its approver may answer
 * through any gateway (`approvals.approve` RPC, `exoclaw approvals`, or `approve <id>` from the
 * approver's channel peer, whose message may be consumed elsewhere). Every gateway answers
 * requests on the core NATS subject {@link APPROVAL_SUBJECT} (not JetStream: an answer to an
 * approval is worth nothing later, nothing is stored or redelivered); the asker sends one request
 * and collects the answers, over the same {@link RequestRelay} as stop requests (control.ts):
 *
 * - decide (MessagePack): `{v: 1, from, op: "decide", id, approved, who}` where `who` is
 *   `{kind: "peer", address: "<channel>:<account>:<peer>"}` (the message's host-known origin,
 *   never its text) or `{kind: "admin", client}` (the RPC client's account). Answer
 *   `{v: 1, from, outcome: "decided" | "unknown" | "forbidden"}`; the asker stops at the first
 *   answer that is not `unknown` (an approval waits in one place).
 * - list: `{v: 1, from, op: "list"}` -> `{v: 1, from, approvals: PendingApproval[]}` from every
 *   gateway (collected until no answer came for `stallMs`).
 *
 * The bus is trusted like its inbound subjects: a NATS client that can publish here can answer
 * approvals, so NATS must be secured with credentials (docs/security.md). No gateway answers its
 * own request (it decided locally first).
 */
import { RequestRelay, type Relayed, type RequestRelayBus } from "./request-relay.js";

/** Core NATS subject of approval answers and listings. */
export const APPROVAL_SUBJECT = "exoclaw.ctl.approval";

/** Who answers an approval (the agent's `Answerer`). */
export type RelayAnswerer = { kind: "peer"; address: string } | { kind: "admin"; client: string };

/** What a gateway did with a decide request (the agent's `DecideOutcome`). */
export type RelayOutcome = "decided" | "unknown" | "forbidden";

/** What {@link ApprovalRelay} needs of the bus. */
export type ApprovalRelayBus = RequestRelayBus;

/** Options of {@link ApprovalRelay}. `T` is the listed approval's shape (opaque here). */
export interface ApprovalRelayOptions<T> {
  bus: ApprovalRelayBus;
  /** Decides an approval waiting here only (never asks the bus again); must not throw. */
  decide: (id: string, approved: boolean, who: RelayAnswerer) => Promise<RelayOutcome>;
  /** The approvals waiting here. */
  list: () => T[];
  /** Wait for answers at most, ms; default 3,000. */
  maxWaitMs?: number;
  /** Stop collecting when no answer came for this long after the last, ms; default 500. */
  stallMs?: number;
  onWarning?: (message: string, error?: unknown) => void;
}

type Request = { op: "list" } | { op: "decide"; id: string; approved: boolean; who: RelayAnswerer };

/** Checks a decoded request; a string says what is wrong. */
function checkRequest(v: unknown): Relayed<Request> | string {
  if (typeof v !== "object" || v === null) return "not a map";
  const r = v as Record<string, unknown>;
  if (r.v !== 1) return `unknown version ${String(r.v)}`;
  if (typeof r.from !== "string") return "from must be a string";
  if (r.op === "list") return { from: r.from, op: "list" };
  if (r.op !== "decide") return "op must be decide or list";
  if (typeof r.id !== "string" || r.id.length === 0 || r.id.length > 64) return "id must be a string of 1-64 characters";
  if (typeof r.approved !== "boolean") return "approved must be a boolean";
  const w = r.who as Record<string, unknown> | null;
  if (typeof w !== "object" || w === null) return "who must be a map";
  let who: RelayAnswerer;
  if (w.kind === "peer" && typeof w.address === "string") who = { kind: "peer", address: w.address };
  else if (w.kind === "admin" && typeof w.client === "string") who = { kind: "admin", client: w.client };
  else return "who must be {kind: peer, address} or {kind: admin, client}";
  return { from: r.from, op: "decide", id: r.id, approved: r.approved, who };
}

/** Answers the other gateways' approval requests and sends this one's; see the module comment. */
export class ApprovalRelay<T> {
  private readonly relay: RequestRelay<Request>;

  constructor(options: ApprovalRelayOptions<T>) {
    this.relay = new RequestRelay<Request>({
      bus: options.bus,
      subject: APPROVAL_SUBJECT,
      what: "approval request",
      check: checkRequest,
      answer: (req) =>
        req.op === "list"
          ? { approvals: options.list() }
          : options
              .decide(req.id, req.approved, req.who)
              .catch((e: unknown): RelayOutcome => {
                options.onWarning?.("cannot answer an approval for another gateway", e);
                return "unknown";
              })
              .then((outcome) => ({ outcome })),
      ...(options.maxWaitMs !== undefined ? { maxWaitMs: options.maxWaitMs } : {}),
      ...(options.stallMs !== undefined ? { stallMs: options.stallMs } : {}),
      ...(options.onWarning !== undefined ? { onWarning: options.onWarning } : {}),
    });
  }

  private ask(payload: Record<string, unknown>, each: (answer: Record<string, unknown>) => boolean): Promise<void> {
    return this.relay.ask(payload, each);
  }

  /**
   * Asks the other gateways to decide approval `id`. Never throws: with NATS unreachable or no
   * gateway holding it, resolves `unknown`.
   */
  async decide(id: string, approved: boolean, who: RelayAnswerer): Promise<RelayOutcome> {
    let outcome: RelayOutcome = "unknown";
    await this.ask({ op: "decide", id, approved, who }, (a) => {
      if (a.outcome === "decided" || a.outcome === "forbidden") {
        outcome = a.outcome;
        return true;
      }
      return false;
    });
    return outcome;
  }

  /** The approvals waiting in the other gateways (those that answered in time). Never throws. */
  async list(): Promise<T[]> {
    const out: T[] = [];
    await this.ask({ op: "list" }, (a) => {
      if (Array.isArray(a.approvals)) out.push(...(a.approvals as T[]));
      return false;
    });
    return out;
  }

  /** Stops answering. */
  close(): void {
    this.relay.close();
  }
}
