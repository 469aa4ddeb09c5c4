/**
 * `POST /flows/<id>/events`: an external system resumes a flow that waits for an event
 * (docs/automation.md, "Durable flows"). Authenticated by the flow's own secret
 * (`X-Exoclaw-Flow-Secret`, given to the conversation when the flow started waiting) or the
 * gateway token (`Authorization: Bearer`), compared in constant time; never open, not even on
 * loopback (a web page could post to a loopback port). The body is the event's JSON payload
 * (at most 16 KiB); 202 when the flow resumes, 404 when no such flow waits for an event.
 */
import type { Logger } from "pino";
import { FlowError, MAX_FLOW_STATE_BYTES, type FlowService } from "../automation/index.js";
import { tokenMatches } from "./identity.js";
import type { HttpAnswer, HttpHandler } from "./types.js";

const ROUTE = /^\/flows\/(f-[0-9a-f]{10})\/events$/;

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer => ({
  status,
  headers: { "content-type": "application/json", ...headers },
  body: JSON.stringify(body),
});

/** Options of {@link createFlowEventRoutes}. */
export interface FlowEventRoutesOptions {
  flows: () => FlowService | undefined;
  /** The gateway token, when one is set. */
  token?: string;
  logger: Logger;
}

/** The route (see the file comment). */
export function createFlowEventRoutes(options: FlowEventRoutesOptions): HttpHandler {
  return {
    route(head) {
      const m = ROUTE.exec(head.path);
      if (m === null) return head.path.startsWith("/flows/") ? json(404, { error: "not found: POST /flows/<flow id>/events" }) : null;
      if (head.method !== "POST") return json(405, { error: "method not allowed: POST the event's JSON" }, { allow: "POST" });
      const flows = options.flows();
      if (flows === undefined) return json(503, { error: "flows are not running yet; retry" });
      const id = m[1]!;
      const secret = head.headers["x-exoclaw-flow-secret"];
      const bearer = /^Bearer (.+)$/i.exec(head.headers.authorization ?? "")?.[1];
      const allowed =
        (secret !== undefined && flows.secretMatches(id, secret)) ||
        (options.token !== undefined && bearer !== undefined && tokenMatches(bearer, options.token));
      if (!allowed) {
        options.logger.warn({ flow: id, remote: head.remoteAddress }, "flow event refused: no valid flow secret or gateway token");
        return json(401, { error: "unauthorized: send the flow's secret as X-Exoclaw-Flow-Secret, or the gateway token as Authorization: Bearer" });
      }
      return { maxBodyBytes: MAX_FLOW_STATE_BYTES, bodyTimeoutMs: 10_000 };
    },
    async handle(head, body) {
      const id = ROUTE.exec(head.path)![1]!;
      let payload: unknown = null;
      if (body.byteLength > 0) {
        try {
          payload = JSON.parse(Buffer.from(body).toString("utf8"));
        } catch {
          return json(400, { error: "the body must be JSON (the event's payload)" });
        }
      }
      try {
        await options.flows()!.postEvent(id, payload);
      } catch (err) {
        if (err instanceof FlowError) return json(404, { error: err.message });
        throw err;
      }
      options.logger.info({ flow: id, remote: head.remoteAddress }, "flow event accepted");
      return json(202, { flow: id, status: "resumed" });
    },
  };
}
