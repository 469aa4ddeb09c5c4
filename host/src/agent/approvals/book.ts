/**
 * The approvals waiting in this process: a tool call parked until a person answers, by short
 * id. Only the configured approver (`<channel>:<account>:<peer>`, from the message's host-known
 * origin, never from its text) or an admin client can answer; nothing the model writes reaches
 * here. An unanswered approval is denied at its `expiresAt`. Each answer is written to the
 * session log (`approval_resolved`) before the parked call learns it.
 */
import { randomInt } from "node:crypto";
import type { Logger } from "pino";
import type { NewSessionEvent } from "../../store/index.js";

/** One parked tool call, as `approvals.list` shows it. `expiresAt` in ms since the epoch. */
export interface PendingApproval {
  id: string;
  sessionKey: string;
  runId: string;
  agentId: string;
  toolUseId: string;
  tool: string;
  input: unknown;
  /** `<channel>:<account>:<peer>` allowed to answer; absent = admin clients only. */
  approver?: string;
  expiresAt: number;
}

/** An answer: `by` is `<channel>:<account>:<peer>`, `rpc:<client>` or `timeout`. */
export interface ApprovalDecision {
  approved: boolean;
  by: string;
}

/** Who answers: a channel peer (its host-known address) or an admin client. */
export type Answerer = { kind: "peer"; address: string } | { kind: "admin"; client: string };

/** What {@link ApprovalBook.decide} did. */
export type DecideOutcome = "decided" | "unknown" | "forbidden";

/** Options of {@link ApprovalBook}. */
export interface ApprovalBookOptions {
  /** Appends to a session's log (the `approval_resolved` event). */
  append: (sessionKey: string, events: NewSessionEvent[]) => Promise<unknown>;
  /** Asks the approver (sends the request on its channel); must not throw. */
  notify: (approval: PendingApproval) => void;
  logger: Logger;
  /** Clock, ms since the epoch; default `Date.now`. */
  now?: () => number;
}

/** Alphabet of approval ids: no look-alikes (0/o, 1/l/i). */
const ID_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789";
/** Characters of an approval id (31^6 ≈ 887 million ids). */
const ID_LENGTH = 6;

interface Waiting {
  approval: PendingApproval;
  resolve: (d: ApprovalDecision) => void;
  timer: NodeJS.Timeout;
}

/**
 * The other gateways of a bus, as the book asks them (gateway/remote-approvals.ts): decide an
 * approval parked there, list theirs. Neither throws (unreachable: `unknown`, `[]`).
 */
export interface ApprovalsElsewhere {
  decide(id: string, approved: boolean, who: Answerer): Promise<DecideOutcome>;
  list(): Promise<PendingApproval[]>;
}

/** The approvals parked in this process. */
export class ApprovalBook {
  private readonly pending = new Map<string, Waiting>();
  private readonly now: () => number;
  private elsewhere: ApprovalsElsewhere | undefined;

  constructor(private readonly options: ApprovalBookOptions) {
    this.now = options.now ?? Date.now;
  }

  /** A fresh short id (not in use here). */
  newId(): string {
    for (;;) {
      let id = "";
      for (let i = 0; i < ID_LENGTH; i++) id += ID_ALPHABET[randomInt(ID_ALPHABET.length)];
      if (!this.pending.has(id)) return id;
    }
  }

  /**
   * Routes answers this process does not hold to the other gateways of the bus (set once the
   * bus relay runs; docs/bus.md, "Approvals answered at any gateway").
   */
  routeElsewhere(elsewhere: ApprovalsElsewhere | undefined): void {
    this.elsewhere = elsewhere;
  }

  /** Whether an `approve <id>` message may answer something: an approval waits here, or other gateways may hold one. */
  get mayAnswer(): boolean {
    return this.pending.size > 0 || this.elsewhere !== undefined;
  }

  /** The approvals waiting here and, with a bus, in the other gateways that answered (oldest first). */
  async listEverywhere(): Promise<PendingApproval[]> {
    const here = this.list();
    if (this.elsewhere === undefined) return here;
    const seen = new Set(here.map((a) => a.id));
    const there = (await this.elsewhere.list()).filter((a) => !seen.has(a.id));
    return [...here, ...there].sort((a, b) => a.expiresAt - b.expiresAt);
  }

  /** How many approvals wait now. */
  get waiting(): number {
    return this.pending.size;
  }

  /** The approvals waiting now, oldest first. */
  list(): PendingApproval[] {
    return [...this.pending.values()].map((w) => w.approval);
  }

  /**
   * Parks until `approval` is answered or expires (then denied, `by: "timeout"`, written to the
   * log like any answer). Asks the approver once, at the start (`ask` false: already asked, e.g.
   * before a restart, and not yet expired).
   * @throws the signal's reason when `signal` aborts (the approval is dropped, nothing written)
   */
  wait(approval: PendingApproval, signal: AbortSignal, ask = true): Promise<ApprovalDecision> {
    signal.throwIfAborted();
    return new Promise<ApprovalDecision>((resolve, reject) => {
      const onAbort = () => {
        const w = this.pending.get(approval.id);
        if (w !== undefined) clearTimeout(w.timer);
        this.pending.delete(approval.id);
        reject(signal.reason);
      };
      signal.addEventListener("abort", onAbort, { once: true });
      const timer = setTimeout(() => void this.settle(approval.id, { approved: false, by: "timeout" }), Math.max(0, approval.expiresAt - this.now()));
      timer.unref?.();
      this.pending.set(approval.id, {
        approval,
        timer,
        resolve: (d) => {
          signal.removeEventListener("abort", onAbort);
          resolve(d);
        },
      });
      if (ask) this.options.notify(approval);
      else
        this.options.logger.info(
          { id: approval.id, tool: approval.tool, sessionKey: approval.sessionKey, expiresAt: approval.expiresAt },
          "approval waits again after a restart",
        );
    });
  }

  /**
   * Answers approval `id`, here or (with a bus) in the gateway where it is parked. A peer may
   * answer only an approval naming it as approver (the same `<channel>:<account>:<peer>`,
   * compared exactly, by the gateway holding it); an admin client any.
   * @returns `unknown` (no such approval waits here), `forbidden` (not its approver), or `decided`
   * @throws StoreError when the answer cannot be written (the approval keeps waiting)
   */
  async decide(id: string, approved: boolean, who: Answerer): Promise<DecideOutcome> {
    const here = await this.decideHere(id, approved, who);
    if (here !== "unknown" || this.elsewhere === undefined) return here;
    return this.elsewhere.decide(id.trim().toLowerCase(), approved, who);
  }

  /**
   * {@link decide} for an approval parked in this process only (what another gateway's relayed
   * answer calls: it never goes back to the bus).
   */
  async decideHere(id: string, approved: boolean, who: Answerer): Promise<DecideOutcome> {
    const w = this.pending.get(id.trim().toLowerCase());
    if (w === undefined) return "unknown";
    if (who.kind === "peer" && (w.approval.approver === undefined || w.approval.approver !== who.address)) return "forbidden";
    const by = who.kind === "peer" ? who.address : `rpc:${who.client}`;
    return (await this.settle(w.approval.id, { approved, by })) ? "decided" : "unknown";
  }

  /** Writes the answer and wakes the parked call; false when it was answered meanwhile. */
  private async settle(id: string, decision: ApprovalDecision): Promise<boolean> {
    const w = this.pending.get(id);
    if (w === undefined) return false;
    this.pending.delete(id);
    clearTimeout(w.timer);
    const { approval } = w;
    try {
      await this.options.append(approval.sessionKey, [
        { kind: "approval_resolved", runId: approval.runId, data: { id, approved: decision.approved, by: decision.by } },
      ]);
    } catch (err) {
      this.options.logger.error({ err, id, sessionKey: approval.sessionKey }, "cannot record an approval answer; the call is answered anyway");
    }
    this.options.logger.info({ id, tool: approval.tool, sessionKey: approval.sessionKey, approved: decision.approved, by: decision.by }, "approval answered");
    w.resolve(decision);
    return true;
  }
}

/** `approve <id>` / `deny <id>` (whole message, case and surrounding blanks ignored), or null. */
export function parseApprovalCommand(text: string): { approved: boolean; id: string } | null {
  const m = /^\s*(approve|deny)\s+([a-z0-9]{4,16})\s*$/i.exec(text);
  return m === null ? null : { approved: m[1]!.toLowerCase() === "approve", id: m[2]!.toLowerCase() };
}

/** The request text sent to the approver. */
export function approvalRequestText(a: PendingApproval): string {
  let input = JSON.stringify(a.input ?? null);
  if (input.length > 500) input = `${input.slice(0, 499)}…`;
  const minutes = Math.max(1, Math.round((a.expiresAt - Date.now()) / 60_000));
  return `Approval needed [${a.id}]: agent ${a.agentId} wants to call ${a.tool} ${input}\nReply "approve ${a.id}" or "deny ${a.id}" (denied in ${minutes} min).`;
}
