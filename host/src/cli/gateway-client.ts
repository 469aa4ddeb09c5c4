/**
 * A minimal wire protocol v1 client (JSON text frames) for the commands that ask a running
 * gateway: `exoclaw sessions`, `status`, `channels status`. Address and token come from the same
 * configuration the gateway reads (`[gateway] bind`/`port`/`token`, `EXOCLAW_PORT`, `EXOCLAW_TOKEN`).
 */
import { loadConfig, type Config } from "../config/index.js";
import { BUILTIN_PLUGINS_DIR } from "../paths.js";
import type { CliIo } from "./io.js";

/** An open connection to a gateway. */
export interface GatewayClient {
  /** `ws://<host>:<port>/ws` connected to. */
  readonly url: string;
  /**
   * One request.
   * @throws Error `<message> (<code>)` for an error response; Error naming the URL when the connection closes first
   */
  call<T>(method: string, params?: Record<string, unknown>): Promise<T>;
  close(): Promise<void>;
}

/** The address a client on this machine uses for the configured gateway (a wildcard bind is reached on loopback). */
export function gatewayHost(config: Config): string {
  const bind = config.gateway.bind;
  return ["0.0.0.0", "::", ""].includes(bind) ? "127.0.0.1" : bind;
}

/** The WebSocket URL of the configured gateway, `ws://<host>:<port>/ws` (an IPv6 host in brackets). */
export function gatewayWsUrl(config: Config): string {
  const host = gatewayHost(config);
  return `ws://${host.includes(":") ? `[${host}]` : host}:${config.gateway.port}/ws`;
}

/**
 * Connects to the configured gateway with the gateway token (when set).
 * @throws Error `no gateway answers at <url> (<reason>)` when nothing listens, or naming the HTTP
 *   status when the gateway refuses the upgrade (a wrong or missing token)
 */
export async function connectGateway(config: Config): Promise<GatewayClient> {
  const url = gatewayWsUrl(config);
  const { WebSocket } = (await import("ws")) as typeof import("ws");
  const ws = new WebSocket(url, { headers: config.gateway.token ? { authorization: `Bearer ${config.gateway.token}` } : {} });
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", (err) => reject(new Error(`no gateway answers at ${url} (${err.message})`)));
    ws.once("unexpected-response", (_req, res) =>
      reject(new Error(`the gateway at ${url} refused the connection (HTTP ${res.statusCode}); is EXOCLAW_TOKEN right?`)),
    );
  });
  const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  let nextId = 1;
  ws.on("message", (data) => {
    const msg = JSON.parse(String(data)) as { id?: number; result?: unknown; error?: { code: number; message: string } };
    const p = msg.id !== undefined ? pending.get(msg.id) : undefined;
    if (!p) return;
    pending.delete(msg.id!);
    if (msg.error) p.reject(new Error(`${msg.error.message} (${msg.error.code})`));
    else p.resolve(msg.result);
  });
  ws.on("close", () => {
    for (const p of pending.values()) p.reject(new Error(`the gateway at ${url} closed the connection`));
    pending.clear();
  });
  return {
    url,
    call: <T>(method: string, params: Record<string, unknown> = {}) =>
      new Promise<T>((resolve, reject) => {
        const id = nextId++;
        pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
        const clean = Object.fromEntries(Object.entries(params).filter(([, v]) => v !== undefined));
        ws.send(JSON.stringify({ jsonrpc: "2.0", id, method, params: clean }));
      }),
    close: async () => ws.close(),
  };
}

/** One RPC call through {@link withGateway}'s client: resolves with the method's result, throws its error. */
export type GatewayCall = <T>(method: string, params?: Record<string, unknown>) => Promise<T>;

/**
 * Runs `fn` with a client of the configured gateway (the config file `configFile`, or the
 * default) and closes it after. Any failure — no config, no gateway answering, an RPC error — is
 * printed as `exoclaw: <message>` on `io.err` with exit code 1; it never throws.
 */
export async function withGateway(io: CliIo, configFile: string | undefined, fn: (call: GatewayCall) => Promise<void>): Promise<void> {
  try {
    const config = loadConfig({ config: configFile }, io.env, [BUILTIN_PLUGINS_DIR]);
    const client = await connectGateway(config);
    try {
      await fn((method, params) => client.call(method, params));
    } finally {
      await client.close();
    }
  } catch (err) {
    io.err(`exoclaw: ${(err as Error).message}`);
    process.exitCode = 1;
  }
}
