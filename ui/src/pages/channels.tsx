import { useState } from "preact/hooks";
import type { ChannelListEntry, DeadLettersListResult, GatewayClient } from "../client/index.js";
import { Confirm, ErrorLine } from "../components.js";
import { fmtTime } from "../format.js";
import { useTopic } from "../hooks.js";

const COUNTERS = [
  ["received", "received"],
  ["accepted", "accepted"],
  ["refused", "dropped (strangers, limits)"],
  ["answered", "answered"],
  ["sendFailures", "failed sends"],
  ["sendRetries", "send retries"],
  ["badSignature", "bad signature"],
  ["throttled", "throttled"],
  ["overloaded", "overloaded"],
] as const;

/**
 * Channels: per channel and account, the webhook URL to paste into the platform, the allowlist,
 * the counters and the last warning or error; the bus's dead letters with replay and delete.
 * Pushed by the gateway when they change (`channels` and `deadletters` topics).
 */
export function Channels(props: { client: GatewayClient }) {
  const list = useTopic<ChannelListEntry[]>(props.client, "channels");
  return (
    <section>
      <h2>Channels</h2>
      <ErrorLine error={list.error} />
      {list.value?.length === 0 ? <p class="muted">No channels are configured ([channels.&lt;name&gt;] in exoclaw.toml).</p> : null}
      {(list.value ?? []).map((c) => {
        const urls = c.accounts.length ? c.accounts.map((a) => `${location.origin}/webhook/${c.name}/${a}`) : [`${location.origin}/webhook/${c.name}`];
        return (
          <div class="channel" key={c.name} data-testid={`channel-${c.name}`}>
            <div>
              <b>{c.name}</b> <span class="tag">{c.plugin}</span>{" "}
              <span class={`tag ${c.loaded ? "done" : "failed"}`}>{c.loaded ? "plugin loaded" : "plugin missing"}</span>
              {c.polled ? <span class="tag">polled</span> : null}
            </div>
            <div class="label">webhook URL</div>
            {urls.map((u) => (
              <div class="row" key={u}>
                <code class="break">{u}</code>
                <button type="button" class="small" onClick={() => void navigator.clipboard?.writeText(u)}>
                  Copy
                </button>
              </div>
            ))}
            <div class="label">allowlist</div>
            <div>{c.allow.length ? c.allow.join(", ") : <span class="muted">nobody (every sender is dropped)</span>}</div>
            <div class="label">warnings and errors by account</div>
            {c.health.length === 0 ? (
              <div class="muted">none logged</div>
            ) : (
              <ul class="plain" data-testid="channel-health">
                {c.health.map((h) => (
                  <li key={h.account} data-testid={`health-${h.account || "channel"}`}>
                    <b>{h.account || "(channel)"}</b> {h.errors} error(s), {h.warnings} warning(s)
                    {h.last ? (
                      <>
                        {" "}
                        — last <span class={`tag ${h.last.level === "warn" ? "" : "failed"}`}>{h.last.level}</span>{" "}
                        <span class="muted">{fmtTime(h.last.at)}</span> <span class="break">{h.last.message}</span>
                      </>
                    ) : null}
                  </li>
                ))}
              </ul>
            )}
            <div class="counters">
              {COUNTERS.map(([k, label]) => (
                <div class="counter" key={k} data-testid={`counter-${k}`}>
                  <div class="card-value">{c.counters?.[k] ?? 0}</div>
                  <div class="card-label">{label}</div>
                </div>
              ))}
            </div>
          </div>
        );
      })}
      <DeadLetters client={props.client} />
    </section>
  );
}

/** The bus's dead letters (`deadletters.*`): each with its error and a payload preview; replay or delete, confirmed. */
function DeadLetters(props: { client: GatewayClient }) {
  const dl = useTopic<DeadLettersListResult>(props.client, "deadletters");
  const [confirm, setConfirm] = useState<{ what: "replay" | "purge"; id: string } | undefined>(undefined);
  const [notice, setNotice] = useState<string | undefined>(undefined);
  if (dl.value === undefined) return <ErrorLine error={dl.error} />;
  return (
    <div data-testid="dead-letters">
      <h3>Dead letters</h3>
      {!dl.value.enabled ? <p class="muted">The bus is off ([bus] in exoclaw.toml): messages are not dead-lettered.</p> : null}
      {dl.value.enabled && dl.value.entries.length === 0 ? <p class="muted">No dead letters.</p> : null}
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      {dl.value.entries.map((e) => (
        <div class="call failed" key={e.id} data-testid={`dead-letter-${e.id}`}>
          <div class="row between">
            <div>
              <b>#{e.id}</b> <span class="muted">{fmtTime(e.failedAt)}</span> {e.consumer} — {e.attempts} attempt(s) <code class="break">{e.msgId}</code>
            </div>
            <div class="row">
              <button type="button" class="small" onClick={() => setConfirm({ what: "replay", id: e.id })}>
                Replay…
              </button>
              <button type="button" class="small danger" onClick={() => setConfirm({ what: "purge", id: e.id })}>
                Delete…
              </button>
            </div>
          </div>
          <div class="error">{e.error}</div>
          <pre>{e.preview}</pre>
        </div>
      ))}
      {confirm ? (
        <Confirm
          title={confirm.what === "replay" ? `Replay dead letter #${confirm.id}?` : `Delete dead letter #${confirm.id}?`}
          confirmLabel={confirm.what === "replay" ? "Replay" : "Delete"}
          danger={confirm.what === "purge"}
          onCancel={() => setConfirm(undefined)}
          onConfirm={async () => {
            const c = confirm;
            setConfirm(undefined);
            try {
              if (c.what === "replay") {
                const r = await props.client.call("deadletters.replay", { ids: [c.id] });
                setNotice(`replayed #${c.id} as ${r.replayed[0]?.msgId ?? "?"}`);
              } else {
                await props.client.call("deadletters.purge", { ids: [c.id] });
                setNotice(`deleted #${c.id}`);
              }
            } catch (err) {
              setNotice((err as Error).message);
            }
          }}
        >
          <p>
            {confirm.what === "replay"
              ? "Publishes the message again to its subject (a new attempt, as if it had just arrived) and removes it from the dead letters."
              : "Removes the message for good; it is not answered."}{" "}
            Logged with your address.
          </p>
        </Confirm>
      ) : null}
    </div>
  );
}
