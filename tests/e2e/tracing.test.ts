// End to end: OpenTelemetry traces of the real gateway process. With OTEL_EXPORTER_OTLP_ENDPOINT
// pointing at an OTLP/HTTP receiver in this test, a chat turn with a tool call arrives as spans
// (turn, model calls, tool call; the calls children of the turn). Without it, no OpenTelemetry
// SDK module is ever resolved by the process (a module resolve hook preloaded with --import
// reports every `@opentelemetry/` specifier).
import { createServer, type Server } from "node:http";
import { pathToFileURL } from "node:url";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "../support/emulator/server.mjs";
import { ROOT, RpcClient, startGateway, type GatewayHandle } from "../support/gateway.js";

const TRACE_HOOK = `--import ${pathToFileURL(join(ROOT, "tests", "support", "module-trace.mjs")).href}`;

/** An OTLP span as the JSON encoding carries it (OTLP/HTTP JSON, opentelemetry-proto's trace.proto). */
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
}

/** A local OTLP/HTTP trace receiver: collects the spans of every POST /v1/traces. */
async function startReceiver(): Promise<{ url: string; spans: OtlpSpan[]; contentTypes: string[]; close(): Promise<void> }> {
  const spans: OtlpSpan[] = [];
  const contentTypes: string[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      contentTypes.push(String(req.headers["content-type"]));
      if (req.url === "/v1/traces") {
        const body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
        for (const rs of body.resourceSpans ?? []) for (const ss of rs.scopeSpans ?? []) spans.push(...(ss.spans ?? []));
      }
      res.writeHead(200, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as { port: number };
  return { url: `http://127.0.0.1:${port}`, spans, contentTypes, close: () => new Promise((r) => server.close(() => r())) };
}

const attr = (s: OtlpSpan, key: string) => {
  const v = s.attributes.find((a) => a.key === key)?.value;
  return v?.stringValue ?? (v?.intValue !== undefined ? Number(v.intValue) : undefined);
};
const moduleTrace = (gw: GatewayHandle) => gw.stderr.filter((l) => l.startsWith("module-trace: "));

describe("OpenTelemetry traces", () => {
  let emulator: Emulator;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    emulator = await startEmulator();
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await emulator?.close();
    await receiver?.close();
  });

  it("exports a span per turn, model call and tool call when OTEL_EXPORTER_OTLP_ENDPOINT is set", async () => {
    const gw = await startGateway({
      ANTHROPIC_API_KEY: "sk-test",
      ANTHROPIC_BASE_URL: emulator.url,
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      OTEL_BSP_SCHEDULE_DELAY: "100",
      NODE_OPTIONS: TRACE_HOOK,
    });
    try {
      expect(gw.logs.some((l) => l.msg === "OpenTelemetry tracing on")).toBe(true);
      const client = await RpcClient.connect(gw.url);
      const { response } = await client.call("chat.send", { content: "what is 12.5 * (3 + 4)?" });
      expect(response.msg.result.text).toContain("87.5");
      client.close();
    } finally {
      // Stopping flushes what the batch processor still holds.
      expect(await gw.stop()).toBe(0);
    }
    const turn = receiver.spans.find((s) => s.name === "exoclaw.turn");
    expect(turn).toBeDefined();
    expect(attr(turn!, "exoclaw.agent")).toBe("main");
    expect(attr(turn!, "exoclaw.outcome")).toBe("ok");
    const calls = receiver.spans.filter((s) => s.name === "exoclaw.provider_call");
    expect(calls).toHaveLength(2); // the tool request, then the answer
    for (const c of calls) {
      expect(c.parentSpanId).toBe(turn!.spanId);
      expect(c.traceId).toBe(turn!.traceId);
      expect(attr(c, "gen_ai.system")).toBe("anthropic");
      expect(Number(attr(c, "gen_ai.usage.input_tokens"))).toBeGreaterThan(0);
    }
    const tool = receiver.spans.find((s) => s.name === "exoclaw.tool_call");
    expect(tool?.parentSpanId).toBe(turn!.spanId);
    expect(attr(tool!, "exoclaw.tool")).toBe("calculator");
    // No content or session key in any span.
    expect(JSON.stringify(receiver.spans)).not.toContain("12.5");
    expect(JSON.stringify(receiver.spans)).not.toContain("agent:main:");
    // The hook saw the SDK being loaded (so its silence below means something).
    expect(moduleTrace(gw).some((l) => l.includes("@opentelemetry/sdk-trace-base"))).toBe(true);
  });

  it("never loads the OpenTelemetry SDK without OTEL_EXPORTER_OTLP_ENDPOINT", async () => {
    const gw = await startGateway({ ANTHROPIC_API_KEY: "sk-test", ANTHROPIC_BASE_URL: emulator.url, NODE_OPTIONS: TRACE_HOOK });
    try {
      const client = await RpcClient.connect(gw.url);
      const { response } = await client.call("chat.send", { content: "hello" });
      expect(response.msg.result.text).toBe("You said: hello");
      client.close();
      expect(gw.logs.some((l) => l.msg === "OpenTelemetry tracing on")).toBe(false);
    } finally {
      await gw.stop();
    }
    // The Anthropic SDK may name @opentelemetry/api itself; the tracing SDK and exporter never load.
    expect(moduleTrace(gw).filter((l) => !l.endsWith("@opentelemetry/api"))).toEqual([]);
  });
});
