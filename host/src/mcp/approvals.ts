/**
 * Approvals of MCP servers' tool lists (`exoclaw mcp approve <name>`), stored beside the plugin
 * approvals in `<state dir>/trust/mcp-approvals.json` (directory 0700, file 0600, written
 * atomically), outside anything a server or a plugin dropper can write.
 *
 * An approval binds a server name to the exact tool definitions its `tools/list` answered: each
 * tool's sha256 (name, title, description, input and output schemas, canonical JSON) and the
 * hash of the whole list. A tool is served only while its current definition has the approved
 * hash: a server that adds a tool or changes one keeps serving the approved ones, and the others
 * are `pending` until approved again (as a changed `.wasm` is). The approved definitions are kept
 * so that a lazily started server's tools can be offered before it runs.
 */
import { createHash, randomBytes } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import * as z from "zod";
import type { McpToolDefinition } from "./types.js";

/** Canonical JSON: object keys sorted at every level (arrays keep their order). */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const o = v as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(",")}}`;
  }
  return JSON.stringify(v);
}

/** The parts of a `tools/list` entry an approval covers (what the model is shown, and what the server says it returns). */
export function approvedShape(t: McpToolDefinition): McpToolDefinition {
  return {
    name: t.name,
    ...(t.title !== undefined ? { title: t.title } : {}),
    ...(t.description !== undefined ? { description: t.description } : {}),
    inputSchema: t.inputSchema,
    ...(t.outputSchema !== undefined ? { outputSchema: t.outputSchema } : {}),
  };
}

/** sha256 (hex) of one tool definition's {@link approvedShape}, canonical JSON. */
export function toolHash(t: McpToolDefinition): string {
  return createHash("sha256")
    .update(canonical(approvedShape(t)))
    .digest("hex");
}

/** sha256 (hex) of a whole `tools/list` answer: the tools' hashes, sorted by tool name. */
export function listHash(tools: readonly McpToolDefinition[]): string {
  const lines = [...tools].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)).map((t) => `${t.name}\t${toolHash(t)}`);
  return createHash("sha256").update(lines.join("\n")).digest("hex");
}

/** One server's approval. */
export interface McpApproval {
  /** sha256 of the approved `tools/list` answer ({@link listHash}). */
  listSha256: string;
  /** The approved tool definitions (as {@link approvedShape}), each with its hash. */
  tools: { definition: McpToolDefinition; sha256: string }[];
  /** ISO 8601 time of the approval. */
  at: string;
}

/** How a live tool list stands against an approval. */
export interface ToolListVerdict {
  /** Tools whose current definition is the approved one: served. */
  approved: McpToolDefinition[];
  /** Tools that are new or changed since the approval (or all of them, never approved): not served. */
  pending: McpToolDefinition[];
  /** True when the list is exactly the approved one. */
  exact: boolean;
}

/** Splits a live tool list into served (approved hash) and pending tools. Pure. */
export function judgeToolList(live: readonly McpToolDefinition[], approval: McpApproval | undefined): ToolListVerdict {
  const ok = new Set(approval?.tools.map((t) => `${t.definition.name}\t${t.sha256}`) ?? []);
  const approved: McpToolDefinition[] = [];
  const pending: McpToolDefinition[] = [];
  for (const t of live) (ok.has(`${t.name}\t${toolHash(t)}`) ? approved : pending).push(t);
  return { approved, pending, exact: approval !== undefined && approval.listSha256 === listHash(live) };
}

/** The approval `exoclaw mcp approve` records for a tool list. */
export function approvalOf(tools: readonly McpToolDefinition[], now: Date = new Date()): McpApproval {
  return { listSha256: listHash(tools), tools: tools.map((t) => ({ definition: approvedShape(t), sha256: toolHash(t) })), at: now.toISOString() };
}

// Built at the first read of the file (z.lazy), not when the host bundle is evaluated: every
// command paid for it at start-up (issue 13, docs/architecture.md "Start-up").
const fileSchema = z.lazy(() => {
  const definitionSchema = z.object({
    name: z.string(),
    title: z.string().optional(),
    description: z.string().optional(),
    inputSchema: z.record(z.string(), z.unknown()),
    outputSchema: z.record(z.string(), z.unknown()).optional(),
  });
  return z.object({
    version: z.literal(1),
    servers: z.record(
      z.string(),
      z.object({
        listSha256: z.string().regex(/^[0-9a-f]{64}$/),
        tools: z.array(z.object({ definition: definitionSchema, sha256: z.string().regex(/^[0-9a-f]{64}$/) })),
        at: z.string(),
      }),
    ),
  });
});

/**
 * The MCP approvals file, `<stateDir>/trust/mcp-approvals.json`:
 * `{"version": 1, "servers": {"<name>": {listSha256, tools: [{definition, sha256}], at}}}`.
 */
export class McpApprovalStore {
  private servers: Record<string, McpApproval> = {};

  private constructor(readonly file: string) {}

  /** `<stateDir>/trust/mcp-approvals.json`. */
  static pathFor(stateDir: string): string {
    return path.join(stateDir, "trust", "mcp-approvals.json");
  }

  /**
   * Reads the store; a missing file is an empty store.
   * @throws Error naming the file when it exists but is not a valid approvals file
   */
  static async open(file: string): Promise<McpApprovalStore> {
    const s = new McpApprovalStore(file);
    await s.reload();
    return s;
  }

  /**
   * Re-reads the file (after `exoclaw mcp approve` changed it).
   * @throws Error naming the file when it is not a valid approvals file (the old approvals are kept)
   */
  async reload(): Promise<void> {
    let text: string;
    try {
      text = await readFile(this.file, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") {
        this.servers = {};
        return;
      }
      throw new Error(`${this.file}: cannot read MCP approvals (${(err as Error).message})`);
    }
    try {
      this.servers = fileSchema.parse(JSON.parse(text)).servers as Record<string, McpApproval>;
    } catch (err) {
      throw new Error(
        `${this.file}: not a valid MCP approvals file (${(err as Error).message.split("\n")[0]}); delete it and approve each server again with: exoclaw mcp approve <name>`,
      );
    }
  }

  /** The approval of a server, if any. */
  get(server: string): McpApproval | undefined {
    return this.servers[server];
  }

  /** Records (or replaces) a server's approval and writes the file atomically (0600). */
  async set(server: string, approval: McpApproval): Promise<void> {
    this.servers = { ...this.servers, [server]: approval };
    await mkdir(path.dirname(this.file), { recursive: true, mode: 0o700 });
    await chmod(path.dirname(this.file), 0o700).catch(() => {});
    const tmp = `${this.file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
    try {
      await writeFile(tmp, `${JSON.stringify({ version: 1, servers: this.servers }, null, 2)}\n`, { mode: 0o600 });
      await rename(tmp, this.file);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }
}
