import { useEffect, useState } from "preact/hooks";
import type { GatewayClient } from "./client/index.js";
import { useRoute } from "./hooks.js";
import { connect, storedToken, storeToken } from "./session.js";
import { Overview } from "./pages/overview.js";
import { Chat } from "./pages/chat.js";
import { Sessions } from "./pages/sessions.js";
import { Agents } from "./pages/agents.js";
import { Plugins } from "./pages/plugins.js";
import { Channels } from "./pages/channels.js";
import { Logs } from "./pages/logs.js";

const PAGES = [
  ["overview", "Overview"],
  ["chat", "Chat"],
  ["sessions", "Sessions"],
  ["agents", "Agents"],
  ["plugins", "Plugins"],
  ["channels", "Channels"],
  ["logs", "Logs"],
] as const;

type Phase = { kind: "connecting" } | { kind: "login"; error?: string } | { kind: "ready"; client: GatewayClient; token: string | undefined };

/** The shell: connects (with this tab's token, or none on a token-less loopback gateway), else asks for a token. */
export function App() {
  const [phase, setPhase] = useState<Phase>({ kind: "connecting" });
  const [offline, setOffline] = useState(false);
  const route = useRoute();

  /** Shows `client`, and reconnects (same token, every 2 s) whenever its connection closes. */
  const attach = (client: GatewayClient, token: string | undefined) => {
    setOffline(false);
    setPhase({ kind: "ready", client, token });
    client.onClose(() => {
      setOffline(true);
      const retry = () =>
        connect(token).then(
          (c) => attach(c, token),
          () => setTimeout(retry, 2000),
        );
      setTimeout(retry, 1000);
    });
  };

  const open = async (token: string | undefined, fromLogin: boolean) => {
    try {
      const client = await connect(token);
      storeToken(token);
      attach(client, token);
    } catch {
      if (token !== undefined) storeToken(undefined);
      setPhase({ kind: "login", ...(fromLogin || token !== undefined ? { error: "The gateway refused this token." } : {}) });
    }
  };

  useEffect(() => {
    void open(storedToken(), false);
  }, []);

  if (phase.kind === "connecting") return <p class="center muted">Connecting…</p>;
  if (phase.kind === "login") return <Login error={phase.error} onSubmit={(t) => open(t, true)} />;

  const page = route[0] ?? "overview";
  const { client, token } = phase;
  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/overview">
          exoclaw
        </a>
        <nav>
          {PAGES.map(([id, label]) => (
            <a key={id} href={`#/${id}`} class={page === id ? "active" : ""} aria-current={page === id ? "page" : undefined}>
              {label}
            </a>
          ))}
        </nav>
        {token !== undefined ? (
          <button
            type="button"
            class="link"
            onClick={() => {
              storeToken(undefined);
              client.close();
              location.reload();
            }}
          >
            Log out
          </button>
        ) : null}
      </header>
      {offline ? <div class="banner">Disconnected from the gateway; reconnecting…</div> : null}
      <main>
        {page === "overview" && <Overview client={client} token={token} />}
        {page === "chat" && <Chat client={client} />}
        {page === "sessions" && <Sessions client={client} sessionKey={route[1]} />}
        {page === "agents" && <Agents client={client} />}
        {page === "plugins" && <Plugins client={client} />}
        {page === "channels" && <Channels client={client} />}
        {page === "logs" && <Logs client={client} />}
      </main>
    </div>
  );
}

function Login(props: { error: string | undefined; onSubmit: (token: string) => Promise<void> }) {
  const [token, setToken] = useState("");
  const [busy, setBusy] = useState(false);
  return (
    <form
      class="login"
      onSubmit={async (e) => {
        e.preventDefault();
        setBusy(true);
        await props.onSubmit(token.trim());
        setBusy(false);
      }}
    >
      <h1>exoclaw</h1>
      <p class="muted">This gateway needs a token (EXOCLAW_TOKEN, or a [[gateway.clients]] token). It is kept for this tab only.</p>
      <label>
        Token
        <input
          type="password"
          name="token"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          required
        />
      </label>
      <button type="submit" class="primary" disabled={busy || token.trim() === ""}>
        {busy ? "Connecting…" : "Log in"}
      </button>
      {props.error ? (
        <p class="error" role="alert">
          {props.error}
        </p>
      ) : null}
    </form>
  );
}
