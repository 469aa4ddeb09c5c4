import { useState } from "preact/hooks";
import type { GatewayClient, PluginInfo } from "../client/index.js";
import { Confirm, ErrorLine } from "../components.js";
import { fmtMs, pretty } from "../format.js";
import { usePoll, useTopic } from "../hooks.js";
import { parseProm } from "../prom.js";
import { storedToken } from "../session.js";

/** Failures by plugin and failure kind (`exoclaw_plugin_call_failures_total` in /metrics); empty without metrics. */
async function failuresByKind(): Promise<Map<string, Record<string, number>>> {
  const token = storedToken();
  const r = await fetch("/metrics", { cache: "no-store", ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}) });
  const out = new Map<string, Record<string, number>>();
  if (!r.ok) return out;
  for (const x of parseProm(await r.text())) {
    if (x.name !== "exoclaw_plugin_call_failures_total" || x.value === 0) continue;
    const rec = out.get(x.labels.plugin ?? "?") ?? {};
    rec[x.labels.failure ?? "?"] = (rec[x.labels.failure ?? "?"] ?? 0) + x.value;
    out.set(x.labels.plugin ?? "?", rec);
  }
  return out;
}

const isEmpty = (v: unknown) => v === undefined || v === null || (typeof v === "object" && Object.keys(v as object).length === 0);

/** Plugins: manifest facts, capabilities (requested / granted / pending), call counters; approve, load, unload. */
export function Plugins(props: { client: GatewayClient }) {
  const { client } = props;
  // Pushed by the gateway when a plugin's state or counters change (`plugins` topic).
  const list = useTopic<PluginInfo[]>(client, "plugins");
  const failures = usePoll(failuresByKind, 10_000);
  const [approve, setApprove] = useState<PluginInfo | undefined>(undefined);
  const [unload, setUnload] = useState<PluginInfo | undefined>(undefined);
  const [path, setPath] = useState("");
  const [notice, setNotice] = useState<string | undefined>(undefined);
  const act = async (what: () => Promise<string>) => {
    try {
      setNotice(await what());
    } catch (err) {
      setNotice((err as Error).message);
    }
  };
  return (
    <section>
      <h2>Plugins</h2>
      <ErrorLine error={list.error} />
      {notice ? (
        <p class="notice" role="status">
          {notice}
        </p>
      ) : null}
      <div class="plugins">
        {(list.value ?? []).map((p) => {
          const pending = !isEmpty(p.capabilities?.pending);
          return (
            <div class={`plugin ${p.status}`} key={p.path} data-testid={`plugin-${p.name}`}>
              <div class="row between">
                <div>
                  <b>{p.name}</b> <span class="muted">{p.version}</span> <span class="tag">{p.kind ?? "?"}</span>{" "}
                  <span class={`tag status ${p.status}`} data-testid="plugin-status">
                    {p.status}
                  </span>
                </div>
                <div class="row">
                  {pending || p.status === "pending_approval" ? (
                    <button type="button" class="primary" onClick={() => setApprove(p)}>
                      Approve…
                    </button>
                  ) : null}
                  {p.status === "loaded" ? (
                    <button type="button" onClick={() => setUnload(p)}>
                      Unload…
                    </button>
                  ) : null}
                </div>
              </div>
              {p.error ? <p class="error">{p.error}</p> : null}
              <div class="muted small">
                {p.calls} calls, {p.errors} failures, p50 {fmtMs(p.p50Ms)}, p99 {fmtMs(p.p99Ms)}
                {p.tools.length ? ` — tools: ${p.tools.join(", ")}` : ""}
                {Object.entries(failures.value?.get(p.name) ?? {}).length
                  ? ` — failures: ${Object.entries(failures.value!.get(p.name)!)
                      .map(([k, n]) => `${k} ${n}`)
                      .join(", ")}`
                  : ""}
              </div>
              <Limits p={p} />
              <details>
                <summary>manifest and capabilities</summary>
                <div class="muted small break">
                  {p.path} sha256 {p.sha256}
                </div>
                <div class="caps">
                  <div>
                    <div class="label">requested</div>
                    <pre>{pretty(p.capabilities?.requested)}</pre>
                  </div>
                  <div>
                    <div class="label">granted (running with)</div>
                    <pre>{pretty(p.capabilities?.granted)}</pre>
                  </div>
                  <div>
                    <div class="label">pending approval</div>
                    <pre>{pretty(p.capabilities?.pending)}</pre>
                  </div>
                </div>
              </details>
            </div>
          );
        })}
      </div>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          void act(async () => {
            const info = await client.call("plugin.load", { path: path.trim() });
            return `loaded ${info.name}: ${info.status}`;
          });
        }}
      >
        <input
          placeholder="/absolute/path/to/plugin.wasm"
          aria-label="plugin file"
          value={path}
          onInput={(e) => setPath((e.target as HTMLInputElement).value)}
        />
        <button type="submit" disabled={path.trim() === ""}>
          Load
        </button>
      </form>
      {approve ? (
        <Confirm
          title={`Approve ${approve.name}?`}
          confirmLabel="Approve"
          onCancel={() => setApprove(undefined)}
          onConfirm={() => {
            const p = approve;
            setApprove(undefined);
            void act(async () => {
              const r = await client.call("plugin.approve", { name: p.name, sha256: p.sha256! });
              return `approved ${r.name}: ${r.approved} (now ${r.status})`;
            });
          }}
        >
          <p>
            Records an approval for exactly this module (sha256 <code class="break">{approve.sha256}</code>) and reloads it. It will run with:
          </p>
          <pre data-testid="approve-what">{pretty(approve.capabilities?.pending)}</pre>
          <p class="muted small">Only capabilities the manifest requests and exoclaw.toml grants are approved. The approval is logged with your address.</p>
        </Confirm>
      ) : null}
      {unload ? (
        <Confirm
          title={`Unload ${unload.name}?`}
          confirmLabel="Unload"
          danger
          onCancel={() => setUnload(undefined)}
          onConfirm={() => {
            const p = unload;
            setUnload(undefined);
            void act(async () => `unloaded ${(await client.call("plugin.unload", { name: p.name })).name}`);
          }}
        >
          <p>Its tools ({unload.tools.join(", ") || "none"}) are no longer offered to the models once its running calls finish.</p>
        </Confirm>
      ) : null}
    </section>
  );
}

const fmtBytes = (n: number) => (n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(n % (1024 * 1024) ? 1 : 0)} MiB` : `${Math.round(n / 1024)} KiB`);

/** The limits a plugin's calls run under, and the network and storage its capabilities allow. */
function Limits(props: { p: PluginInfo }) {
  const l = props.p.limits;
  const granted = (props.p.capabilities?.granted ?? {}) as { http?: { hosts?: string[]; methods?: string[] }; kv?: { quotaBytes?: number } };
  const items: [string, string][] = [];
  if (l) {
    items.push(["call budget", `${l.timeoutMs} ms`], ["memory", fmtBytes(l.memoryBytes)], ["output", fmtBytes(l.maxOutputBytes)]);
    items.push(["in flight", String(l.maxInFlight)], ["queued", String(l.maxQueued)]);
  }
  if (granted.http?.hosts?.length)
    items.push(["http hosts", granted.http.hosts.join(", ") + (granted.http.methods?.length ? ` (${granted.http.methods.join(", ")})` : "")]);
  if (granted.kv?.quotaBytes !== undefined) items.push(["kv quota", fmtBytes(granted.kv.quotaBytes)]);
  if (items.length === 0) return null;
  return (
    <div class="limits small" data-testid="plugin-limits">
      {items.map(([k, v]) => (
        <span key={k} class="limit">
          <span class="muted">{k}</span> {v}
        </span>
      ))}
    </div>
  );
}
