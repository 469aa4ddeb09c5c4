// Where the UI keeps its login and connection: the token in sessionStorage (gone when the tab
// closes; never in a URL or localStorage), the WebSocket on the page's own origin.
import { GatewayClient } from "./client/index.js";

const TOKEN_KEY = "exoclaw.token";

/** The token of this tab's login, if any. */
export function storedToken(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/** Keeps (or, with undefined, forgets) this tab's token. */
export function storeToken(token: string | undefined): void {
  if (token === undefined) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
}

/** `ws(s)://<this page's host>/ws`. */
export function gatewayUrl(): string {
  return `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws`;
}

/** Opens a connection to the gateway that served this page. */
export function connect(token: string | undefined): Promise<GatewayClient> {
  return GatewayClient.connect({ url: gatewayUrl(), ...(token ? { token } : {}), encoding: "msgpack" });
}
