import { useEffect, useRef, useState } from "preact/hooks";
import { RpcCallError, type GatewayClient } from "../client/index.js";
import { applyEvent, fromHistory, type Entry } from "../chat-model.js";
import { pretty } from "../format.js";

const PEER_KEY = "exoclaw.webchat.peer";

/** This browser's peer id on channel `webchat` (kept across reloads, so history comes back). */
function peerId(): string {
  let p = localStorage.getItem(PEER_KEY);
  if (!p) {
    p = `browser-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem(PEER_KEY, p);
  }
  return p;
}

/** WebChat: talk to the agent the bindings route channel `webchat` to, as this browser's peer. */
export function Chat(props: { client: GatewayClient }) {
  const { client } = props;
  const peer = useRef(peerId()).current;
  const [past, setPast] = useState<Entry[]>([]);
  const [turn, setTurn] = useState<Entry[]>([]);
  const [input, setInput] = useState("");
  const [running, setRunning] = useState<{ runId?: string; sessionKey?: string } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const sessionKey = useRef<string | undefined>(undefined);
  const bottom = useRef<HTMLDivElement>(null);

  // History on (re)load: this peer's webchat session, after its latest reset.
  useEffect(() => {
    (async () => {
      const { sessions } = await client.call("sessions.list", { channel: "webchat", peer, limit: 10 });
      const latest = sessions.sort((a, b) => b.updatedAt - a.updatedAt)[0];
      if (latest === undefined) return;
      sessionKey.current = latest.sessionKey;
      const events = [];
      let afterSeq = 0;
      for (;;) {
        const page = await client.call("chat.history", { sessionKey: latest.sessionKey, afterSeq, limit: 500 });
        events.push(...page.events);
        if (page.nextAfterSeq === undefined) break;
        afterSeq = page.nextAfterSeq;
      }
      setPast(fromHistory(events));
    })().catch((err: Error) => setError(err.message));
  }, [client]);

  useEffect(() => bottom.current?.scrollIntoView({ block: "end" }), [past, turn]);

  const send = async () => {
    const content = input.trim();
    if (content === "" || running) return;
    setInput("");
    setError(undefined);
    const user: Entry = { kind: "user", text: content };
    let current: Entry[] = [];
    setPast((p) => [...p, user]);
    setTurn([]);
    setRunning({});
    try {
      await client.call(
        "chat.send",
        { content, channel: "webchat", peer },
        {
          onEvent: (ev) => {
            sessionKey.current = ev.sessionKey;
            setRunning({ runId: ev.runId, sessionKey: ev.sessionKey });
            current = applyEvent(current, ev);
            setTurn(current);
          },
        },
      );
    } catch (err) {
      // The error event is already in the transcript; other failures (not connected) are shown here.
      if (!(err instanceof RpcCallError) || !current.some((e) => e.kind === "error")) setError((err as Error).message);
    } finally {
      setPast((p) => [...p, ...current.map((e) => (e.kind === "assistant" ? { ...e, streaming: false } : e))]);
      setTurn([]);
      setRunning(undefined);
    }
  };

  const stop = async () => {
    const r = running;
    const target = r?.runId ? { runId: r.runId } : sessionKey.current ? { sessionKey: sessionKey.current } : undefined;
    if (target) await client.call("chat.abort", target).catch((err: Error) => setError(err.message));
  };

  return (
    <section class="chat">
      <div class="transcript" aria-live="polite" data-testid="transcript">
        {[...past, ...turn].map((e, i) => (
          <Bubble key={i} entry={e} />
        ))}
        {running && turn.length === 0 ? <div class="msg assistant muted">…</div> : null}
        <div ref={bottom} />
      </div>
      {error ? (
        <p class="error" role="alert">
          {error}
        </p>
      ) : null}
      <form
        class="composer"
        onSubmit={(e) => {
          e.preventDefault();
          void send();
        }}
      >
        <textarea
          name="message"
          rows={2}
          placeholder="Message the agent (Enter sends, Shift+Enter: new line)"
          value={input}
          onInput={(e) => setInput((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey) {
              e.preventDefault();
              void send();
            }
          }}
        />
        {running ? (
          <button type="button" class="danger" onClick={stop}>
            Stop
          </button>
        ) : (
          <button type="submit" class="primary" disabled={input.trim() === ""}>
            Send
          </button>
        )}
      </form>
      <p class="muted small">
        Channel webchat, peer {peer}
        {sessionKey.current ? ` — session ${sessionKey.current}` : ""}
      </p>
    </section>
  );
}

function Bubble(props: { entry: Entry }) {
  const e = props.entry;
  if (e.kind === "user") return <div class="msg user">{e.text}</div>;
  if (e.kind === "assistant") return <div class={`msg assistant${e.streaming ? " streaming" : ""}`}>{e.text}</div>;
  if (e.kind === "error")
    return (
      <div class="msg error" role="alert">
        {e.text}
      </div>
    );
  const state = e.output === undefined ? "running" : e.isError ? "failed" : "done";
  return (
    <details class={`tool ${state}`} data-testid="tool-card">
      <summary>
        <span class="tool-name">{e.name}</span> <span class={`tag ${state}`}>{state}</span>
      </summary>
      <div class="tool-io">
        <div class="label">input</div>
        <pre>{pretty(e.input)}</pre>
        {e.output !== undefined ? (
          <>
            <div class="label">output</div>
            <pre>{e.output}</pre>
          </>
        ) : null}
      </div>
    </details>
  );
}
