import { useEffect, useRef } from "preact/hooks";
import type { GatewayClient, StatusResult } from "../client/index.js";
import { Card, ErrorLine } from "../components.js";
import { fmtDuration, fmtInt, fmtMs } from "../format.js";
import { usePoll, useTopic } from "../hooks.js";
import { parseProm, quantile, sum } from "../prom.js";

/** Local midnight, ms since the epoch ("tokens today"). */
const midnight = () => new Date(new Date().setHours(0, 0, 0, 0)).getTime();

/** The `status` topic's push: the `status` result with the `/health` and `/ready` answers. */
type StatusPush = StatusResult & { health?: { httpStatus: number; status?: string }; ready?: { httpStatus: number; status?: string; reasons?: string[] } };

/**
 * Health, readiness, uptime, transport (pushed by the gateway at most once a second: the
 * `status` topic of `events.subscribe`, computed once for every open tab), turns/s, error rate,
 * p50/p99 turn latency (every 10 s: `/metrics`), tokens today (every minute: `usage.summary`
 * reads every event of the day), so that the page does not weigh on the turns it watches. Each
 * part renders as soon as it arrives.
 */
export function Overview(props: { client: GatewayClient; token: string | undefined }) {
  const last = useRef<{ at: number; turns: number } | undefined>(undefined);
  const fast = useTopic<StatusPush>(props.client, "status");
  const slow = usePoll(async () => {
    const metricsText = await fetch("/metrics", { cache: "no-store", ...(props.token ? { headers: { authorization: `Bearer ${props.token}` } } : {}) }).then(
      (r) => (r.ok ? r.text() : undefined),
    );
    const samples = metricsText === undefined ? undefined : parseProm(metricsText);
    let turnsPerS: number | undefined;
    let errorRate: number | undefined;
    let p50: number | undefined;
    let p99: number | undefined;
    if (samples) {
      const turns = sum(samples, "exoclaw_turns_total");
      const failed = sum(samples, "exoclaw_turns_total", (l) => l.outcome !== "ok");
      const now = performance.now();
      if (last.current !== undefined && now > last.current.at) turnsPerS = ((turns - last.current.turns) * 1000) / (now - last.current.at);
      last.current = { at: now, turns };
      errorRate = turns === 0 ? 0 : failed / turns;
      p50 = quantile(samples, "exoclaw_turn_duration_seconds", 0.5);
      p99 = quantile(samples, "exoclaw_turn_duration_seconds", 0.99);
    }
    return { turnsPerS, errorRate, p50, p99, hasMetrics: samples !== undefined };
  }, 10_000);
  // usage.summary reads every event of the sessions updated today: once a minute is enough.
  const daily = usePoll(() => props.client.call("usage.summary", { sinceMs: midnight() }), 60_000);

  // Time to interactive (bench/ui.mjs): the first render of live data.
  useEffect(() => {
    if (fast.value !== undefined && performance.getEntriesByName("exoclaw:interactive").length === 0) performance.mark("exoclaw:interactive");
  }, [fast.value !== undefined]);
  if (fast.value === undefined) return <p class="muted">{fast.error ?? "Loading…"}</p>;
  const status = fast.value;
  const health = { status: status.health?.httpStatus ?? 0, body: (status.health ?? {}) as { status?: string } };
  const ready = { status: status.ready?.httpStatus ?? 0, body: (status.ready ?? {}) as { status?: string; reasons?: string[] } };
  const m = slow.value;
  const usage = daily.value;
  const reasons = ready.body.reasons ?? [];
  const tokens = usage ? usage.totals.inputTokens + usage.totals.outputTokens : undefined;
  const dash = "—";
  return (
    <section>
      <h2>
        Overview <span class="live" title="pushed by the gateway every second (metrics every 10 s)" />
      </h2>
      <ErrorLine error={fast.error ?? slow.error ?? daily.error} />
      <div class="cards">
        <Card testid="health" label="Health" value={<span class={health.status === 200 ? "ok" : "bad"}>{String(health.body.status ?? health.status)}</span>} />
        <Card
          testid="ready"
          label="Readiness"
          value={<span class={ready.status === 200 ? "ok" : "bad"}>{String(ready.body.status ?? ready.status)}</span>}
          {...(reasons.length ? { hint: reasons.join("; ") } : {})}
        />
        <Card label="Uptime" value={fmtDuration(status.uptimeMs)} hint={`v${status.version}, pid ${status.pid}`} />
        <Card label="Transport" value={status.transport} {...(status.store ? { hint: status.store } : {})} />
        <Card label="Turns/s" value={m?.turnsPerS === undefined ? dash : m.turnsPerS.toFixed(2)} {...(m && !m.hasMetrics ? { hint: "metrics off" } : {})} />
        <Card label="Error rate" value={m?.errorRate === undefined ? dash : `${(m.errorRate * 100).toFixed(1)} %`} />
        <Card label="Turn latency p50 / p99" value={m?.p50 === undefined ? dash : `${fmtMs(m.p50 * 1000)} / ${fmtMs((m.p99 ?? 0) * 1000)}`} />
        <Card
          testid="tokens-today"
          label="Tokens today"
          value={tokens === undefined ? dash : fmtInt(tokens)}
          {...(usage?.totals.costUsd ? { hint: `$${usage.totals.costUsd.toFixed(4)}` } : {})}
        />
        <Card label="Sessions" value={fmtInt(status.sessions)} />
        <Card label="Plugins loaded" value={fmtInt(status.plugins)} />
      </div>
      {status.agents?.length ? (
        <>
          <h3>Agents</h3>
          <ul class="plain">
            {status.agents.map((a) => (
              <li key={a.id}>
                <b>{a.id}</b> {a.default ? <span class="tag">default</span> : null} {a.provider}/{a.model}
              </li>
            ))}
          </ul>
        </>
      ) : null}
      {status.bus ? (
        <p>
          Bus: {status.bus.kind} {status.bus.connected ? "connected" : "disconnected"}, {status.bus.spooled} spooled
        </p>
      ) : null}
    </section>
  );
}
