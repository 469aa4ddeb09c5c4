import type { AgentListEntry, GatewayClient } from "../client/index.js";
import { ErrorLine } from "../components.js";
import { pretty } from "../format.js";
import { useTopic } from "../hooks.js";

/**
 * Agents: provider and model (with failover chain), prompt and soul, tools allowed, queue mode,
 * outbound allowlist, bindings. Pushed by the gateway (the `agents` topic: the `agents.list`
 * result, sent again when a config reload changed it), not polled.
 */
export function Agents(props: { client: GatewayClient }) {
  const list = useTopic<AgentListEntry[]>(props.client, "agents");
  return (
    <section>
      <h2>Agents</h2>
      <ErrorLine error={list.error} />
      {(list.value ?? []).map((a) => (
        <div class="agent" key={a.id} data-testid={`agent-${a.id}`}>
          <div>
            <b>{a.id}</b> {a.default ? <span class="tag">default</span> : null} {a.provider}/{a.model}
            {a.fallbacks.length ? <span class="muted"> then {a.fallbacks.join(", ")}</span> : null}
          </div>
          <dl>
            <dt>tools</dt>
            <dd>{a.tools.length ? a.tools.join(", ") : "none"}</dd>
            <dt>queue</dt>
            <dd>{pretty(a.queue)}</dd>
            <dt>outbound</dt>
            <dd>{a.outbound.length ? a.outbound.join(", ") : "none"}</dd>
            <dt>limits</dt>
            <dd>
              {a.maxIterations} model calls per turn, {a.maxTokens} max tokens
            </dd>
            <dt>bindings</dt>
            <dd>{a.bindings.length ? a.bindings.map((b) => JSON.stringify(b)).join("; ") : a.default ? "everything unbound (default agent)" : "none"}</dd>
            <dt>soul</dt>
            <dd>{a.soulFile ?? "none"}</dd>
          </dl>
          {a.systemPrompt ? (
            <details>
              <summary>system prompt</summary>
              <pre>{a.systemPrompt}</pre>
            </details>
          ) : null}
        </div>
      ))}
    </section>
  );
}
