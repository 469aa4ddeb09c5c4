/**
 * The runtime's side of approvals: the book of this process, asking the approver on its
 * channel, and answering `approve <id>` / `deny <id>` messages from the approver before they
 * become turns.
 */
import { randomUUID } from "node:crypto";
import type { Logger } from "pino";
import type { NewSessionEvent } from "../../store/index.js";
import type { TurnRequest, TurnResult } from "../turn-request.js";
import { messageSource } from "../turn-request.js";
import type { OutboundSender } from "../types.js";
import { ApprovalBook, approvalRequestText, parseApprovalCommand, type PendingApproval } from "./book.js";

/** `<channel>:<account>:<peer>` split (the peer may hold `:`), or null. */
export function parseAddress(address: string): { channel: string; account: string; peer: string } | null {
  const a = address.indexOf(":");
  const b = a < 0 ? -1 : address.indexOf(":", a + 1);
  if (a <= 0 || b <= a + 1 || b === address.length - 1) return null;
  return { channel: address.slice(0, a), account: address.slice(a + 1, b), peer: address.slice(b + 1) };
}

/** Creates the book of this process; requests go to the approver through `outbound` (when it is a channel). */
export function createApprovalBook(o: {
  append: (sessionKey: string, events: NewSessionEvent[]) => Promise<unknown>;
  outbound?: OutboundSender | undefined;
  logger: Logger;
}): ApprovalBook {
  return new ApprovalBook({
    append: o.append,
    logger: o.logger,
    notify: (a: PendingApproval) => {
      o.logger.info({ id: a.id, tool: a.tool, sessionKey: a.sessionKey, approver: a.approver, expiresAt: a.expiresAt }, "tool call waits for approval");
      const to = a.approver === undefined ? null : parseAddress(a.approver);
      if (to === null || o.outbound === undefined || to.channel === "ws") return;
      o.outbound.send({ ...to, content: approvalRequestText(a) }).catch((err: unknown) => {
        o.logger.warn({ id: a.id, approver: a.approver, err }, "cannot ask the approver; approve with `exoclaw approvals approve` instead");
      });
    },
  });
}

/**
 * When `request` is `approve <id>` / `deny <id>` from the approver of an approval waiting here
 * (the message's host-known origin `<channel>:<account>:<peer>` equals the configured approver),
 * answers it and returns the turn result to reply with (nothing is journaled); otherwise
 * undefined (the message is an ordinary one: a peer that is not the approver gets no oracle).
 * @throws StoreError when the answer cannot be written
 */
export async function answerApprovalCommand(book: ApprovalBook, request: TurnRequest): Promise<TurnResult | undefined> {
  const cmd = parseApprovalCommand(request.content);
  if (cmd === null) return undefined;
  const src = messageSource(request);
  const outcome = await book.decide(cmd.id, cmd.approved, { kind: "peer", address: `${src.channel}:${src.account}:${src.peer}` });
  if (outcome !== "decided") return undefined;
  return {
    text: `${cmd.approved ? "Approved" : "Denied"} ${cmd.id}.`,
    stopReason: "end_turn",
    usage: { inputTokens: 0, outputTokens: 0 },
    iterations: 0,
    runId: randomUUID(),
    sessionKey: request.sessionKey,
    agentId: request.agentId,
  };
}
