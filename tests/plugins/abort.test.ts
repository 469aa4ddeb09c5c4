// A caller's abort is not a plugin timeout: a tool or channel call whose AbortSignal fires
// (a cancelled turn, a stopping poller) rejects with PluginCallAbortedError (`isAborted`), is
// neither counted as a plugin error nor warned about, while a real timeout still reads
// "timed out" and is warned about. Real sandbox, real hostile fixture (its `loop` tool spins).
import { rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isAborted, loadPlugins, PluginCallAbortedError, type PluginHost } from "../../host/src/plugins/index.js";
import { fixture } from "./sandbox/support.js";
import { captureLogger, tempDir } from "./support.js";

let dir = "";
let host: PluginHost;
const logger = captureLogger();

beforeAll(async () => {
  dir = await tempDir();
  await writeFile(path.join(dir, "hostile.wasm"), await fixture("hostile"));
  host = await loadPlugins({ dirs: [dir], logger });
  expect(hostile().status).not.toBe("error");
  logger.records.length = 0; // load-time lines are not what these tests are about
}, 120_000);

afterAll(async () => {
  await host?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const hostile = () => host.list().find((p) => p.name === "hostile")!;
const warningsOfKind = (kind: string) => logger.warnings().filter((r) => r.fields["kind"] === kind);

describe("a caller's abort", () => {
  it("of a running tool call rejects as aborted (cause: the signal's reason), not as a timeout, and is no plugin error", async () => {
    const before = hostile();
    const ac = new AbortController();
    const reason = new Error("turn cancelled");
    const call = host.callTool("loop", {}, ac.signal);
    setTimeout(() => ac.abort(reason), 100);
    const err = await call.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PluginCallAbortedError);
    expect(isAborted(err)).toBe(true);
    expect((err as PluginCallAbortedError).kind).toBe("aborted");
    expect((err as Error).cause).toBe(reason);
    expect((err as Error).message).toBe("plugin 'hostile': the call to tool 'loop' was aborted by the caller (turn cancelled)");
    expect(warningsOfKind("timeout")).toEqual([]);
    expect(logger.warnings()).toEqual([]);
    const after = hostile();
    expect(after.errors).toBe(before.errors);
    expect(after.calls).toBe(before.calls);
    // The pool counts it under its own kind.
    const stats = host.stats().find((s) => s.name === "hostile")!;
    expect(stats.failures.aborted).toBe(1);
    expect(stats.failures.timeout).toBeUndefined();
  });

  it("before the call starts rejects as aborted, for tools and channel exports alike", async () => {
    const ac = new AbortController();
    ac.abort("stop");
    const tool = await host.callTool("loop", {}, ac.signal).catch((e: unknown) => e);
    expect(isAborted(tool)).toBe(true);
    expect((tool as Error).message).toBe("plugin 'hostile': the call to tool 'loop' was aborted by the caller (stop)");
    const unknown = await host.callTool("no_such_tool", {}, ac.signal).catch((e: unknown) => e);
    expect((unknown as Error).message).toBe("the call to tool 'no_such_tool' was aborted by the caller (stop)");
    const channel = await host.callChannel("webhook", "parse", {}, ac.signal).catch((e: unknown) => e);
    expect(isAborted(channel)).toBe(true);
    expect((channel as Error).message).toBe("plugin 'webhook': the call to export 'parse' was aborted by the caller (stop)");
    expect(isAborted(new Error("the call was aborted by the caller"))).toBe(false);
  });

  it("a real timeout still reads 'timed out', counts as a plugin error and is warned about", async () => {
    const before = hostile();
    const r = await host.callTool("loop", {});
    expect(r.isError).toBe(true);
    expect(r.content).toBe("plugin 'hostile' timed out on tool 'loop': the call to 'call' exceeded its time limit of 1000 ms; the instance was stopped");
    expect(hostile().errors).toBe(before.errors + 1);
    expect(warningsOfKind("timeout")).toHaveLength(1);
    expect(host.stats().find((s) => s.name === "hostile")!.failures.timeout).toBe(1);
  });
});
