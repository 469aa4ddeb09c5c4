import type { GatewayClient } from "../client/index.js";
import { ErrorLine } from "../components.js";
import { usePoll } from "../hooks.js";

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

/** Channels: per channel and account, the webhook URL to paste into the platform, the allowlist and the counters. */
export function Channels(props: { client: GatewayClient }) {
  const list = usePoll(() => props.client.call("channels.list"), 2000);
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
    </section>
  );
}
