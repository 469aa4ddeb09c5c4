/**
 * `/mcp` and `/mcp/<agent>` on the gateway: exoclaw as an MCP server over Streamable HTTP
 * (host/src/mcp/serve.ts), behind the same checks as `/ws` (the upgrade guard of auth.ts: Host,
 * Origin, then the gateway token or a client token, which must have scope `chat`). Stateless:
 * each POST is answered with one JSON body (`enableJsonResponse`); GET (a server-to-client SSE
 * stream) and DELETE (ending a session) answer 405, which the transport spec allows for servers
 * without sessions. Source: MCP spec 2025-06-18, "Transports" > "Streamable HTTP".
 */
import { compileToolAllowlist, type AgentRuntime } from "../agent/index.js";
import type { Config } from "../config/index.js";
import type { PluginRegistry } from "../plugins/index.js";
import { createExoclawMcpServer, type McpServeOptions } from "../mcp/index.js";
import { sessionKey } from "../router/index.js";
import type { ClientIdentity } from "./identity.js";
import type { HttpAnswer, HttpHandler, HttpRequestHead, UpgradeRequest, UpgradeVerdict } from "./types.js";

/** What the gateway gives `/mcp`. */
export interface McpRouteTarget {
  /**
   * What to serve to `identity` for `agentId` (undefined: the default agent); undefined when
   * there is no such agent (404).
   */
  serve(agentId: string | undefined, identity: ClientIdentity): McpServeOptions | undefined;
  /** Largest request body, bytes; default 4 MiB. */
  maxBodyBytes?: number;
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}): HttpAnswer => ({
  status,
  headers: { "content-type": "application/json", "cache-control": "no-store", ...headers },
  body: JSON.stringify(body),
});

/** The agent part of `/mcp/<agent>`, `null` for `/mcp`, undefined for another path. */
function agentOf(path: string): string | null | undefined {
  if (path === "/mcp" || path === "/mcp/") return null;
  const m = path.match(/^\/mcp\/([A-Za-z0-9_-]{1,64})\/?$/);
  return m ? m[1]! : undefined;
}

/**
 * The `/mcp` routes.
 * @param guard the gateway's upgrade guard (createUpgradeGuard), applied to every request
 */
export function createMcpRoute(target: McpRouteTarget, guard: (req: UpgradeRequest) => UpgradeVerdict): HttpHandler {
  const identities = new WeakMap<HttpRequestHead, ClientIdentity>();
  return {
    route(head) {
      const agent = agentOf(head.path);
      if (agent === undefined) return null;
      const verdict = guard({
        remoteAddress: head.remoteAddress,
        query: head.query,
        ...(head.headers.authorization !== undefined ? { authorization: head.headers.authorization } : {}),
        ...(head.headers.origin !== undefined ? { origin: head.headers.origin } : {}),
        ...(head.headers.host !== undefined ? { host: head.headers.host } : {}),
      });
      if (!verdict.ok) return json(verdict.status, { error: verdict.error }, verdict.status === 401 ? { "www-authenticate": "Bearer" } : {});
      if (!verdict.identity.scopes.has("chat")) return json(403, { error: "forbidden: /mcp needs a token with scope chat" });
      if (head.method !== "POST") return json(405, { error: "this MCP endpoint is stateless: send JSON-RPC with POST" }, { allow: "POST" });
      identities.set(head, verdict.identity);
      return { maxBodyBytes: target.maxBodyBytes ?? 4 * 1024 * 1024, bodyTimeoutMs: 30_000 };
    },
    async handle(head, body) {
      try {
        const agent = agentOf(head.path) ?? undefined;
        const options = target.serve(agent, identities.get(head)!);
        if (options === undefined) return json(404, { error: `no agent "${agent}"` });
        const { WebStandardStreamableHTTPServerTransport } = await import("@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js");
        const server = await createExoclawMcpServer(options);
        const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
        await server.connect(transport);
        try {
          const headers = new Headers();
          for (const [k, v] of Object.entries(head.headers)) headers.set(k, v);
          const request = new Request(`http://localhost${head.path}${head.query ? `?${head.query}` : ""}`, {
            method: "POST",
            headers,
            body: Buffer.from(body),
          });
          const response = await transport.handleRequest(request);
          const out: Record<string, string> = {};
          response.headers.forEach((v, k) => {
            out[k] = v;
          });
          return { status: response.status, headers: out, body: new Uint8Array(await response.arrayBuffer()) };
        } finally {
          await server.close().catch(() => {});
        }
      } catch (err) {
        return json(500, { jsonrpc: "2.0", error: { code: -32603, message: `internal error: ${(err as Error).message}` }, id: null });
      }
    },
  };
}

/**
 * The gateway's {@link McpRouteTarget}: the agents of the live configuration, their allowed WASM
 * tools from `plugins`, and a `chat` tool running a turn in session
 * `agent:<agent>:mcp:<account>:mcp` (the caller's token's account).
 */
export function mcpServeTarget(deps: {
  config: () => Config;
  plugins: Pick<PluginRegistry, "tools" | "callTool">;
  runtime: Pick<AgentRuntime, "run">;
}): McpRouteTarget {
  return {
    serve(agentId, identity) {
      const live = deps.config();
      const agent = live.agents.find((a) => a.id === (agentId ?? live.defaultAgent));
      if (agent === undefined) return undefined;
      const account = identity.account;
      const key = sessionKey(agent.id, "mcp", account, "mcp");
      return {
        agentId: agent.id,
        allows: compileToolAllowlist(agent.tools),
        plugins: deps.plugins,
        context: { agentId: agent.id, channel: "mcp", account, peer: "mcp", sender: "mcp", sessionKey: key },
        chat: async (message, signal) =>
          (await deps.runtime.run({ agentId: agent.id, sessionKey: key, content: message, channel: "mcp", account, peer: "mcp" }, () => {}, signal)).text,
      };
    },
  };
}
