/**
 * `approvals.list`, `approvals.approve {id}`, `approvals.deny {id}` (docs/protocol.md): the tool
 * calls parked for a person's yes (host/src/agent/approvals/) in this gateway and, with a bus, in
 * the other gateways (gateway/remote-approvals.ts). Scope admin: an
 * operator's act, like the approver's own `approve <id>` on its channel.
 */
import * as z from "zod";
import type { ApprovalBook, PendingApproval } from "../agent/index.js";
import { ErrorCode, RpcError, parseParams } from "../protocol/index.js";
import { requireScope } from "./identity.js";
import type { MethodHandler } from "./rpc.js";

// Built at the first call (z.lazy), not when the host bundle is evaluated (issue 13, start-up).
const IdParams = z.lazy(() => z.strictObject({ id: z.string().regex(/^[A-Za-z0-9]{4,16}$/, "must be an approval id") }));
const NoParams = z.lazy(() => z.strictObject({}));

/** The approvals methods' view of the runtime's book. */
export type ApprovalsApi = Pick<ApprovalBook, "list" | "decide"> & Partial<Pick<ApprovalBook, "listEverywhere">>;

/**
 * Adds the `approvals.*` methods to `methods`.
 * Errors: -32010 without scope admin; -32602 for an unknown id (`data.reason` "unknown_approval":
 * none waits in this gateway nor, with a bus, in another one, or it was answered or expired).
 */
export function addApprovalMethods(methods: Map<string, MethodHandler>, approvals: ApprovalsApi): void {
  methods.set("approvals.list", async (params, ctx): Promise<{ approvals: PendingApproval[] }> => {
    requireScope(ctx.identity, "admin", "approvals.list");
    parseParams(NoParams, params);
    // With a bus: this gateway's and the other gateways' (those answering within the relay's wait).
    return { approvals: approvals.listEverywhere !== undefined ? await approvals.listEverywhere() : approvals.list() };
  });
  for (const [method, approved] of [
    ["approvals.approve", true],
    ["approvals.deny", false],
  ] as const) {
    methods.set(method, async (params, ctx): Promise<{ id: string; approved: boolean }> => {
      requireScope(ctx.identity, "admin", method);
      const { id } = parseParams(IdParams, params);
      const outcome = await approvals.decide(id, approved, { kind: "admin", client: ctx.identity.account });
      if (outcome !== "decided")
        throw new RpcError(
          ErrorCode.InvalidParams,
          `no approval "${id}" waits in this gateway${approvals.listEverywhere !== undefined ? " or on the bus" : ""}`,
          { reason: "unknown_approval" },
        );
      return { id: id.toLowerCase(), approved };
    });
  }
}
