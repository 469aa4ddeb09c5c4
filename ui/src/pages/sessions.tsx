import { useEffect, useRef, useState } from "preact/hooks";
import type { GatewayClient, ModelRequestView, SessionEvent, SessionInfo } from "../client/index.js";
import { Confirm, ErrorLine } from "../components.js";
import { downloadJson, fmtClock, fmtMs, fmtTime, pretty } from "../format.js";
import { usePoll } from "../hooks.js";
import { describeEvent, groupTurns, type Turn } from "../turns.js";

const SINCE = { any: 0, "1h": 3_600_000, "24h": 86_400_000, "7d": 7 * 86_400_000 } as const;

/** Sessions: list with filters and full-text search, or one session's timeline. */
export function Sessions(props: { client: GatewayClient; sessionKey: string | undefined }) {
  return props.sessionKey === undefined ? <SessionList client={props.client} /> : <SessionDetail client={props.client} sessionKey={props.sessionKey} />;
}

const href = (key: string) => `#/sessions/${encodeURIComponent(key)}`;

/** The `sessions` topic's push (docs/protocol.md): the changed keys and their rows, or `all`. */
interface SessionsPush {
  sessionKeys: string[];
  sessions?: SessionInfo[];
  all?: true;
}

/**
 * The list after a push: each changed key's row replaced (or added when it matches the filters),
 * keys without a row (deleted) removed; newest first.
 */
export function patchRows(
  rows: SessionInfo[],
  keys: string[],
  changed: SessionInfo[],
  filters: { agent: string; channel: string; peer: string; since: keyof typeof SINCE },
): SessionInfo[] {
  const gone = new Set(keys);
  const since = SINCE[filters.since];
  const fits = (s: SessionInfo) =>
    (!filters.agent || s.agent === filters.agent) &&
    (!filters.channel || s.channel === filters.channel) &&
    (!filters.peer || s.peer === filters.peer) &&
    (since === 0 || s.updatedAt >= Date.now() - since);
  return [...rows.filter((r) => !gone.has(r.sessionKey)), ...changed.filter(fits)].sort((a, b) => b.updatedAt - a.updatedAt);
}

function SessionList(props: { client: GatewayClient }) {
  const [filters, setFilters] = useState({ agent: "", channel: "", peer: "", since: "any" as keyof typeof SINCE });
  const [query, setQuery] = useState("");
  const [search, setSearch] = useState<string | undefined>(undefined);
  const list = usePoll(
    async () => {
      const sessions: SessionInfo[] = [];
      let cursor: string | undefined;
      do {
        const page = await props.client.call("sessions.list", {
          ...(filters.agent ? { agent: filters.agent } : {}),
          ...(filters.channel ? { channel: filters.channel } : {}),
          ...(filters.peer ? { peer: filters.peer } : {}),
          ...(cursor ? { cursor } : {}),
          limit: 200,
        });
        sessions.push(...page.sessions);
        cursor = page.nextCursor;
      } while (cursor !== undefined && sessions.length < 1000);
      const since = SINCE[filters.since];
      return sessions.filter((s) => since === 0 || s.updatedAt >= Date.now() - since).sort((a, b) => b.updatedAt - a.updatedAt);
    },
    0,
    [filters.agent, filters.channel, filters.peer, filters.since],
  );
  // The gateway pushes the changed rows (`sessions` topic): patched in place; read again (at
  // most every 2 s) only when it says too many changed to send rows for.
  const reload = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => {
    const sub = props.client.subscribe(["sessions"], (_t, data) => {
      const push = data as SessionsPush;
      if (push.all || push.sessions === undefined) {
        reload.current ??= setTimeout(() => ((reload.current = undefined), list.reload()), 2000);
        return;
      }
      list.patch((rows) => (rows === undefined ? rows : patchRows(rows, push.sessionKeys, push.sessions!, filters)));
    });
    return () => {
      if (reload.current !== undefined) clearTimeout(reload.current);
      reload.current = undefined;
      sub.close();
    };
  }, [props.client, filters.agent, filters.channel, filters.peer, filters.since]);
  const hits = usePoll(async () => (search ? (await props.client.call("sessions.search", { query: search, limit: 50 })).hits : undefined), 0, [search]);
  const field = (name: "agent" | "channel" | "peer") => (
    <input
      placeholder={name}
      aria-label={`filter by ${name}`}
      value={filters[name]}
      onChange={(e) => setFilters({ ...filters, [name]: (e.target as HTMLInputElement).value.trim() })}
    />
  );
  return (
    <section>
      <h2>Sessions</h2>
      <div class="filters">
        {field("agent")}
        {field("channel")}
        {field("peer")}
        <select
          aria-label="updated since"
          value={filters.since}
          onChange={(e) => setFilters({ ...filters, since: (e.target as HTMLSelectElement).value as keyof typeof SINCE })}
        >
          <option value="any">any time</option>
          <option value="1h">last hour</option>
          <option value="24h">last 24 h</option>
          <option value="7d">last 7 days</option>
        </select>
        <form
          class="search"
          onSubmit={(e) => {
            e.preventDefault();
            setSearch(query.trim() || undefined);
          }}
        >
          <input
            type="search"
            placeholder="full-text search"
            aria-label="search sessions"
            value={query}
            onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
          />
          <button type="submit">Search</button>
        </form>
      </div>
      <ErrorLine error={list.error ?? hits.error} />
      {hits.value ? (
        <div class="hits">
          <h3>
            {hits.value.length} hit(s) for “{search}”{" "}
            <button type="button" class="link" onClick={() => (setSearch(undefined), setQuery(""))}>
              clear
            </button>
          </h3>
          <ul class="plain">
            {hits.value.map((h) => (
              <li key={`${h.event.sessionKey}#${h.event.seq}`}>
                <a href={href(h.event.sessionKey)}>{h.event.sessionKey}</a> #{h.event.seq} <span class="muted">{describeEvent(h.event).slice(0, 160)}</span>
              </li>
            ))}
          </ul>
        </div>
      ) : null}
      <div class="table-wrap">
        <table>
          <thead>
            <tr>
              <th>Session</th>
              <th>Agent</th>
              <th>Channel</th>
              <th>Peer</th>
              <th>Events</th>
              <th>Updated</th>
            </tr>
          </thead>
          <tbody>
            {(list.value ?? []).map((s) => (
              <tr key={s.sessionKey}>
                <td>
                  <a href={href(s.sessionKey)}>{s.sessionKey}</a>
                </td>
                <td>{s.agent}</td>
                <td>{s.channel}</td>
                <td>{s.peer}</td>
                <td>{s.lastSeq}</td>
                <td>{fmtTime(s.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {list.value?.length === 0 ? <p class="muted">No sessions.</p> : null}
      </div>
    </section>
  );
}

function SessionDetail(props: { client: GatewayClient; sessionKey: string }) {
  const { client, sessionKey } = props;
  const [confirm, setConfirm] = useState<"delete" | "reset" | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const data = usePoll(
    async () => {
      const events: SessionEvent[] = [];
      let afterSeq = 0;
      for (;;) {
        const page = await client.call("chat.history", { sessionKey, afterSeq, limit: 500 });
        events.push(...page.events);
        if (page.nextAfterSeq === undefined) break;
        afterSeq = page.nextAfterSeq;
      }
      return events;
    },
    0,
    [sessionKey, client],
  );
  // New events pushed by the gateway (`session:<key>` topic, after the last one read).
  const [pushed, setPushed] = useState<SessionEvent[]>([]);
  const [gone, setGone] = useState(false);
  const loaded = data.value;
  useEffect(() => {
    setPushed([]);
    if (loaded === undefined) return;
    const topic = `session:${sessionKey}`;
    const sub = client.subscribe(
      [topic],
      (_t, d) => {
        const push = d as { events?: SessionEvent[]; deleted?: true };
        if (push.deleted) setGone(true);
        else if (push.events) setPushed((old) => [...old, ...push.events!]);
      },
      { [topic]: loaded.at(-1)?.seq ?? 0 },
    );
    return sub.close;
  }, [loaded, sessionKey, client]);
  // Which plugin serves each tool (plugin.list), for the tool calls.
  const plugins = usePoll(() => client.call("plugin.list"), 0, [client]);
  const pluginOf = new Map((plugins.value ?? []).flatMap((p) => p.tools.map((t) => [t, p.name] as const)));
  const events = [...(data.value ?? []), ...pushed];
  const turns = groupTurns(events);
  return (
    <section>
      <p>
        <a href="#/sessions">← Sessions</a>
      </p>
      <h2 class="break">{sessionKey}</h2>
      <div class="row">
        <button
          type="button"
          onClick={() => downloadJson(`${sessionKey.replace(/[^A-Za-z0-9_.-]+/g, "_")}.json`, { sessionKey, exportedAt: new Date().toISOString(), events })}
        >
          Export JSON
        </button>
        <button type="button" onClick={() => setConfirm("reset")}>
          Reset…
        </button>
        <button type="button" class="danger" onClick={() => setConfirm("delete")}>
          Delete…
        </button>
      </div>
      <ErrorLine error={data.error} />
      {gone ? <p class="notice">This session was deleted.</p> : null}
      {notice ? <p class="notice">{notice}</p> : null}
      <p class="muted">
        {events.length} events, {turns.length} turn(s)
      </p>
      {turns.map((t) => (
        <TurnView key={t.runId} turn={t} pluginOf={pluginOf} client={client} sessionKey={sessionKey} />
      ))}
      {confirm ? (
        <Confirm
          title={confirm === "delete" ? "Delete this session?" : "Reset this session?"}
          confirmLabel={confirm === "delete" ? "Delete" : "Reset"}
          danger={confirm === "delete"}
          onCancel={() => setConfirm(undefined)}
          onConfirm={async () => {
            const what = confirm;
            setConfirm(undefined);
            try {
              if (what === "delete") {
                await client.call("sessions.delete", { sessionKey });
                location.hash = "#/sessions";
              } else {
                await client.call("sessions.reset", { sessionKey, reason: "reset from the Control UI" });
                setNotice("Reset: the agent no longer sees the earlier messages.");
                data.reload();
              }
            } catch (err) {
              setNotice((err as Error).message);
            }
          }}
        >
          {confirm === "delete" ? (
            <p>
              Erases all {events.length} events of <code>{sessionKey}</code> from the store. This cannot be undone.
            </p>
          ) : (
            <p>
              Appends a reset marker to <code>{sessionKey}</code>: the events stay readable, the agent starts over.
            </p>
          )}
        </Confirm>
      ) : null}
    </section>
  );
}

function TurnView(props: { turn: Turn; pluginOf: Map<string, string>; client: GatewayClient; sessionKey: string }) {
  const t = props.turn;
  return (
    <details class={`turn turn-${t.outcome}`} data-testid="turn">
      <summary>
        <span class="muted">{fmtClock(t.startedAt)}</span> <span class={`tag ${t.outcome}`}>{t.outcome}</span> {t.message ?? t.runId}{" "}
        <span class="muted">
          ({t.modelCalls.length} model call(s), {t.toolCalls.length} tool call(s), {fmtMs(t.endedAt - t.startedAt)})
        </span>
      </summary>
      {t.error ? <p class="error">{t.error}</p> : null}
      <h4>Model calls</h4>
      {t.modelCalls.map((c) => (
        <div class="call" key={c.index} data-testid="model-call">
          <div>
            <b>#{c.index}</b> {c.usage?.provider ? `${c.usage.provider}/${c.usage.model}` : ""} —{" "}
            {c.usage ? `${c.usage.inputTokens} in / ${c.usage.outputTokens} out tokens` : "no usage recorded"}
            {c.usage?.costUsd !== undefined ? `, $${c.usage.costUsd.toFixed(5)}` : ""} — {fmtMs(c.endedAt - c.startedAt)}
          </div>
          <Sent client={props.client} sessionKey={props.sessionKey} runId={t.runId} call={c.index} />
          {c.text ? (
            <>
              <div class="label">streamed back</div>
              <pre>{c.text}</pre>
            </>
          ) : null}
          {c.toolUses.length ? <div class="muted">asked for: {c.toolUses.join(", ")}</div> : null}
        </div>
      ))}
      {t.toolCalls.length ? <h4>Tool calls</h4> : null}
      {t.toolCalls.map((c) => (
        <div class={`call ${c.isError ? "failed" : ""}`} key={c.id} data-testid="tool-call">
          <div>
            <b>{c.name}</b> <span class="muted">plugin {props.pluginOf.get(c.name) ?? "?"}</span> {c.isError ? <span class="tag failed">error</span> : null}{" "}
            {c.durationMs !== undefined ? fmtMs(c.durationMs) : "no result"} <span class="muted">{c.id}</span>
          </div>
          <div class="label">input</div>
          <pre>{pretty(c.input)}</pre>
          {c.output !== undefined ? (
            <>
              <div class="label">output</div>
              <pre>{c.output}</pre>
            </>
          ) : null}
        </div>
      ))}
      <h4>Events</h4>
      <ol class="timeline">
        {t.events.map((e) => (
          <li key={e.seq}>
            <span class="muted">
              #{e.seq} {fmtClock(e.at)}
            </span>{" "}
            <b>{e.kind}</b> <span class="ev">{describeEvent(e)}</span>
          </li>
        ))}
      </ol>
    </details>
  );
}

/** "What was sent" of one model call: `sessions.request` (reconstructed from the log), fetched when opened. */
function Sent(props: { client: GatewayClient; sessionKey: string; runId: string; call: number }) {
  const [req, setReq] = useState<ModelRequestView | string | undefined>(undefined);
  return (
    <details
      data-testid="model-request"
      onToggle={(e) => {
        if (!(e.currentTarget as HTMLDetailsElement).open || req !== undefined) return;
        props.client
          .call("sessions.request", { sessionKey: props.sessionKey, runId: props.runId, call: props.call })
          .then(setReq, (err: Error) => setReq(err.message));
      }}
    >
      <summary>what was sent</summary>
      {req === undefined ? <p class="muted">Loading…</p> : null}
      {typeof req === "string" ? <p class="error">{req}</p> : null}
      {typeof req === "object" ? (
        <>
          <div class="muted small">
            {req.provider}/{req.model}, max {req.maxTokens ?? "?"} tokens, {req.messages.length} message(s), {req.tools.length} tool(s) — {req.notes.join("; ")}
          </div>
          <div class="label">system</div>
          <pre>{req.system ?? "(none)"}</pre>
          <div class="label">messages</div>
          <pre data-testid="request-messages">{pretty(req.messages)}</pre>
          <div class="label">tools</div>
          <pre>{req.tools.map((t) => `${t.name}: ${t.description}`).join("\n") || "(none)"}</pre>
        </>
      ) : null}
    </details>
  );
}
