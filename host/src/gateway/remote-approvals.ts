/**
 * Approvals answered at any gateway of a bus (issue 19; docs/bus.md, "Approvals answered at any
 * gateway"): a tool call parks in the gateway running its turn; an answer reaching another
 * gateway (`approvals.approve`/`deny` RPC, `exoclaw approvals`, the approver's `approve <id>`
 * consumed there) is relayed over NATS to the one holding it, which checks the answerer exactly
 * as for a local answer (the approver's host-known address, or an admin client) and resumes the
 * turn once: its book forgets the approval before waking the call, so a second answer, from any
 * gateway, finds nothing. The wire part is the bus's (bus/nats/approval-relay.ts).
 */
import type { Logger } from "pino";
import type { ApprovalBook, PendingApproval } from "../agent/index.js";
import { openApprovalRelay, type Bus } from "../bus/index.js";

/**
 * Starts answering the other gateways' approval requests from `book` and routes `book`'s
 * answers for approvals it does not hold to them. Returns the close function, or undefined for
 * an in-process bus (one process: every approval is parked here).
 */
export async function startRemoteApprovals(options: { bus: Bus; book: ApprovalBook; logger: Logger }): Promise<(() => void) | undefined> {
  const { book, logger } = options;
  const relay = await openApprovalRelay<PendingApproval>(options.bus, {
    decide: async (id, approved, who) => {
      const outcome = await book.decideHere(id, approved, who);
      if (outcome !== "unknown") logger.info({ id, approved, outcome, who: who.kind }, "approval answer relayed by another gateway");
      return outcome;
    },
    list: () => book.list(),
    onWarning: (message, error) => logger.warn({ err: error }, message),
  });
  if (relay === undefined) return undefined;
  book.routeElsewhere({ decide: (id, approved, who) => relay.decide(id, approved, who), list: () => relay.list() });
  return () => {
    book.routeElsewhere(undefined);
    relay.close();
  };
}
