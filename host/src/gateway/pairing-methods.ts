/**
 * `pairing.list`, `pairing.approve`, `pairing.deny` (docs/protocol.md): the operator's side of
 * channel pairing (channels/pairing.ts). Scope `admin`: approving lets a stranger reach an agent.
 */
import * as z from "zod";
import { PairingError, type PairingApproval, type PairingRequest, type PairingStore } from "../channels/index.js";
import { ErrorCode, NoParamsSchema, parseParams, RpcError } from "../protocol/index.js";
import { requireScope } from "./identity.js";
import type { MethodHandler } from "./rpc.js";

const CodeSchema = z.strictObject({ code: z.string().min(1).max(64) });

/** A PairingError (malformed or unknown code) as -32602; anything else stays internal. */
function codeCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof PairingError) throw new RpcError(ErrorCode.InvalidParams, `Invalid params: ${err.message}`);
    throw err;
  }
}

/**
 * Adds the pairing methods to `methods`.
 * - `pairing.list` `{}` -> `{pending: PairingRequest[], approved: PairingApproval[]}`
 * - `pairing.approve` `{code}` -> `{approved: PairingApproval}`: the peer is let in at its next message
 * - `pairing.deny` `{code}` -> `{code, revoked}`: a pending code is silenced until it expires; an approved one is revoked
 * Each refuses a caller without scope `admin` (-32010); a malformed or unknown code is -32602.
 */
export function addPairingMethods(methods: Map<string, MethodHandler>, store: PairingStore, log: { info(obj: object, msg: string): void }): void {
  methods.set("pairing.list", (params, ctx): { pending: PairingRequest[]; approved: PairingApproval[] } => {
    requireScope(ctx.identity, "admin", "pairing.list");
    parseParams(NoParamsSchema, params);
    return store.list();
  });
  methods.set("pairing.approve", (params, ctx): { approved: PairingApproval } => {
    requireScope(ctx.identity, "admin", "pairing.approve");
    const { code } = parseParams(CodeSchema, params);
    const approved = codeCall(() => store.approve(code));
    log.info(
      { channel: approved.channel, account: approved.account, peer: approved.peer, code: approved.code, client: ctx.identity.account },
      "pairing approved",
    );
    return { approved };
  });
  methods.set("pairing.deny", (params, ctx): { code: string; revoked: boolean } => {
    requireScope(ctx.identity, "admin", "pairing.deny");
    const { code } = parseParams(CodeSchema, params);
    const r = codeCall(() => store.deny(code));
    log.info({ code: r.code, revoked: r.revoked, client: ctx.identity.account }, "pairing denied");
    return r;
  });
}
