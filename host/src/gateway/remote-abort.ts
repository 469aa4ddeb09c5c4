/**
 * `chat.abort` and `/stop` across the gateways of one bus (docs/bus.md, "Stopping a turn on
 * another gateway"): this gateway answers the others' stop requests from its own runtime, and
 * asks the others when a turn to stop does not run here. The wire part is the bus's
 * (bus/nats/control.ts); this file is the policy: what a request may stop.
 */
import type { Logger } from "pino";
import type { AgentRuntime, StoppedBy } from "../agent/index.js";
import { openAbortRelay, type AbortAnswer, type AbortRequest, type Bus } from "../bus/index.js";
import { parseSessionKey } from "../store/index.js";

/** Asks the other gateways to stop a turn; see {@link startRemoteAbort}. */
export type AbortElsewhere = (target: { runId: string } | { sessionKey: string }, by: StoppedBy, account?: string) => Promise<AbortAnswer>;

/** The running relay: {@link AbortElsewhere} and its close. */
export interface RemoteAbort {
  abortElsewhere: AbortElsewhere;
  close(): void;
}

/**
 * Whether a stop request may stop the turn of `sessionKey`: any (no `account`: an admin's
 * `chat.abort`, a channel peer's `/stop` of its own conversation, a `sessionKey` request the
 * asker checked), or only a `ws` session of that account (a `runId` request of a scope-`chat`
 * client, as `ownsSession` decides locally).
 */
export function mayStop(request: Pick<AbortRequest, "account">, sessionKey: string): boolean {
  if (request.account === undefined) return true;
  try {
    const parts = parseSessionKey(sessionKey);
    return parts.channel === "ws" && parts.account === request.account;
  } catch {
    return false;
  }
}

/**
 * Starts answering the other gateways' stop requests from `runtime` and returns the function
 * that sends this gateway's. Undefined for an in-process bus.
 */
export async function startRemoteAbort(options: {
  bus: Bus;
  runtime: Pick<AgentRuntime, "abort" | "sessionOfRun">;
  logger: Logger;
}): Promise<RemoteAbort | undefined> {
  const { runtime, logger } = options;
  const relay = await openAbortRelay(options.bus, {
    handle: (req) => {
      const sessionKey = req.sessionKey ?? runtime.sessionOfRun(req.runId!);
      if (sessionKey === undefined) return { aborted: [] };
      if (!mayStop(req, sessionKey)) return { aborted: [], denied: true };
      const aborted = runtime.abort(req.runId !== undefined ? { runId: req.runId } : { sessionKey }, req.by);
      if (aborted.length > 0) logger.info({ sessionKey, runIds: aborted, by: req.by }, "turn stopped on request of another gateway");
      return { aborted };
    },
    onWarning: (message, error) => logger.warn({ err: error }, message),
  });
  if (relay === undefined) return undefined;
  return {
    abortElsewhere: (target, by, account) =>
      relay.request({
        by,
        ...("runId" in target ? { runId: target.runId } : { sessionKey: target.sessionKey }),
        ...(account !== undefined ? { account } : {}),
      }),
    close: () => relay.close(),
  };
}
