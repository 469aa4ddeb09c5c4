// The deferred metrics (telemetry/deferred.ts): calls made before prom-client loads are replayed
// into the real PromMetrics (real prom-client, real text exposition), a scrape loads them, and a
// failed load drops calls instead of queuing forever.
import { describe, expect, it } from "vitest";
import { DEFERRED_QUEUE_LIMIT, deferMetrics, loadPrometheus } from "../../host/src/telemetry/index.js";

const real = () => loadPrometheus().then((m) => new m.PromMetrics());

describe("deferred metrics", () => {
  it("loads nothing until asked, then replays the calls made before in order", async () => {
    let loads = 0;
    const d = deferMetrics(() => (loads++, real()));
    d.recorder.turnEnded("main", "ok", 0.2);
    d.recorder.turnEnded("main", "ok", 0.3);
    d.recorder.connections(1);
    d.recorder.connections(1);
    d.recorder.connections(-1);
    d.recorder.pluginCall("calculator", "tool", 0.001);
    expect(loads).toBe(0);
    await d.load();
    d.recorder.turnEnded("main", "error", 0.1);
    const { body } = await d.recorder.scrape();
    expect(loads).toBe(1);
    expect(body).toMatch(/^exoclaw_turns_total\{agent="main",outcome="ok"\} 2$/m);
    expect(body).toMatch(/^exoclaw_turns_total\{agent="main",outcome="error"\} 1$/m);
    expect(body).toMatch(/^exoclaw_turn_duration_seconds_count\{agent="main"\} 3$/m);
    expect(body).toMatch(/^exoclaw_websocket_connections 1$/m);
    expect(body).toMatch(/^exoclaw_plugin_calls_total\{plugin="calculator",kind="tool"\} 1$/m);
    // prom-client's default collectors are there too.
    expect(body).toMatch(/^process_cpu_user_seconds_total /m);
    expect(d.dropped).toBe(0);
  });

  it("a scrape before the load loads the metrics and answers with the queued calls", async () => {
    const d = deferMetrics(real);
    d.recorder.webhookRequest("telegram", 200);
    const { contentType, body } = await d.recorder.scrape();
    expect(contentType).toContain("text/plain");
    expect(body).toMatch(/^exoclaw_webhook_requests_total\{channel="telegram",status="200"\} 1$/m);
  });

  it("is not a thenable, and a failed load drops calls instead of queuing them", async () => {
    const d = deferMetrics(() => Promise.reject(new Error("no prom-client")));
    expect(await Promise.resolve(d.recorder)).toBe(d.recorder);
    d.recorder.connections(1);
    await expect(d.load()).rejects.toThrow("no prom-client");
    await expect(d.recorder.scrape()).rejects.toThrow("no prom-client");
    d.recorder.connections(1);
    expect(d.dropped).toBe(2);
  });

  it("bounds the queue before the load", () => {
    const d = deferMetrics(real);
    for (let i = 0; i < DEFERRED_QUEUE_LIMIT + 5; i++) d.recorder.connections(1);
    expect(d.dropped).toBe(5);
  });
});
