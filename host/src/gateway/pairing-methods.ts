/**
 * `pairing.list`, `pairing.approve`, `pairing.deny` (docs/protocol.md): the operator's side of
 * channel pairing (channels/pairing.ts). Scope `admin`: approving lets a stranger reach an agent.
 */
import * as z from "zod";
import { PairingError, type PairingApproval, type PairingBook, type PairingRequest } from "../channels/index.js";
import { ErrorCode, NoParamsSchema, parseParams, RpcError } from "../protocol/index.js";
import { requireScope } from "./identity.js";
import type { MethodHandler } from "./rpc.js";

const CodeSchema = z.lazy(() => z.strictObject({ code: z.string().min(1).max(64) }));

/** A PairingError (malformed or unknown code) as -32602; anything else stays internal. */
async function codeCall<T>(fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
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
export function addPairingMethods(methods: Map<string, MethodHandler>, store: PairingBook, log: { info(obj: object, msg: string): void }): void {
  methods.set("pairing.list", async (params, ctx): Promise<{ pending: PairingRequest[]; approved: PairingApproval[] }> => {
    requireScope(ctx.identity, "admin", "pairing.list");
    parseParams(NoParamsSchema, params);
    return await store.list();
  });
  methods.set("pairing.approve", async (params, ctx): Promise<{ approved: PairingApproval }> => {
    requireScope(ctx.identity, "admin", "pairing.approve");
    const { code } = parseParams(CodeSchema, params);
    const approved = await codeCall(() => store.approve(code));
    log.info(
      { channel: approved.channel, account: approved.account, peer: approved.peer, code: approved.code, client: ctx.identity.account },
      "pairing approved",
    );
    return { approved };
  });
  methods.set("pairing.deny", async (params, ctx): Promise<{ code: string; revoked: boolean }> => {
    requireScope(ctx.identity, "admin", "pairing.deny");
    const { code } = parseParams(CodeSchema, params);
    const r = await codeCall(() => store.deny(code));
    log.info({ code: r.code, revoked: r.revoked, client: ctx.identity.account }, "pairing denied");
    return r;
  });
}
