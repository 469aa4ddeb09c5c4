// `[hooks]` and `[agents.approvals]` of exoclaw.toml: schema and resolution.
import { describe, expect, it } from "vitest";
import { needsApproval, resolveApprovals, resolveHooks } from "../../host/src/config/index.js";
import { FileConfigSchema } from "../../host/src/config/schema.js";

describe("[hooks]", () => {
  it("resolves order, timeout and failure mode (absent: no hooks run)", () => {
    expect(resolveHooks(undefined)).toEqual({ order: [], timeoutMs: 250, fail: "open", plugins: {} });
    const file = FileConfigSchema.parse({ hooks: { order: ["guard", "audit"], timeout_ms: 100, fail: "closed", plugins: { audit: { fail: "open" } } } });
    expect(resolveHooks(file.hooks)).toEqual({ order: ["guard", "audit"], timeoutMs: 100, fail: "closed", plugins: { audit: { fail: "open" } } });
  });

  it("refuses an unknown failure mode and unknown keys", () => {
    expect(FileConfigSchema.safeParse({ hooks: { fail: "maybe" } }).success).toBe(false);
    expect(FileConfigSchema.safeParse({ hooks: { orders: [] } }).success).toBe(false);
  });
});

describe("[agents.approvals]", () => {
  it("matches tools, and input patterns over the input's JSON", () => {
    const file = FileConfigSchema.parse({
      agents: [
        { id: "ops", approvals: { approver: "telegram:default:1001", rules: [{ tool: "shell" }, { tool: "http_fetch", input: "internal\\.example" }] } },
      ],
    });
    const a = resolveApprovals(file.agents![0]!.approvals!);
    expect(a.approver).toBe("telegram:default:1001");
    expect(a.timeoutMs).toBe(600_000);
    expect(needsApproval(a, "shell", { cmd: "ls" })).toBe(true);
    expect(needsApproval(a, "http_fetch", { url: "https://internal.example/x" })).toBe(true);
    expect(needsApproval(a, "http_fetch", { url: "https://public.example/x" })).toBe(false);
    expect(needsApproval(a, "echo", {})).toBe(false);
    expect(needsApproval(undefined, "shell", {})).toBe(false);
  });

  it("refuses a bad approver address, an invalid pattern, no rules", () => {
    expect(FileConfigSchema.safeParse({ agents: [{ id: "a", approvals: { approver: "telegram", rules: [{ tool: "x" }] } }] }).success).toBe(false);
    expect(FileConfigSchema.safeParse({ agents: [{ id: "a", approvals: { rules: [{ tool: "x", input: "(" }] } }] }).success).toBe(false);
    expect(FileConfigSchema.safeParse({ agents: [{ id: "a", approvals: { rules: [] } }] }).success).toBe(false);
  });
});

describe("config reload", () => {
  it("sees a changed [hooks] and a changed approval input pattern (both live)", async () => {
    const { diffConfig } = await import("../../host/src/gateway/reload.js");
    const { loadConfig } = await import("../../host/src/config/index.js");
    const { mkdtempSync, writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "exoclaw-hooks-cfg-"));
    const load = (toml: string) => {
      const file = join(dir, `c${Math.random()}.toml`);
      writeFileSync(file, toml);
      return loadConfig({ config: file }, { EXOCLAW_STATE_DIR: dir, ANTHROPIC_API_KEY: "k" }, []);
    };
    const agent = (pattern: string) => `[[agents]]\nid = "main"\n[agents.approvals]\nrules = [{ tool = "shell", input = "${pattern}" }]\n`;
    const a = load(`${agent("rm")}[hooks]\norder = ["guard"]\n`);
    expect(diffConfig(a, load(`${agent("rm")}[hooks]\norder = ["audit"]\n`)).live).toEqual(["hooks"]);
    expect(diffConfig(a, load(`${agent("mv")}[hooks]\norder = ["guard"]\n`)).live).toEqual(["agents.main"]);
    expect(diffConfig(a, load(`${agent("rm")}[hooks]\norder = ["guard"]\n`)).live).toEqual([]);
  });
});
