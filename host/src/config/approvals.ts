/**
 * `[agents.approvals]` of exoclaw.toml: the tool calls of one agent that wait for a person's yes
 * (host/src/agent/approvals/). Kept out of schema.ts so that file only names it.
 */
import * as z from "zod";

/** One rule: calls of `tool` (`*` = any), optionally only those whose input (as JSON text) matches `input` (a regular expression). */
export interface ApprovalRule {
  tool: string;
  input?: RegExp;
}

/** `[agents.approvals]`, resolved. */
export interface AgentApprovals {
  rules: ApprovalRule[];
  /**
   * Who may answer, as `<channel>:<account>:<peer>` (the approver's own conversation, where the
   * request is sent); absent = only admin clients (`approvals.*` RPC, `exoclaw approvals`).
   */
  approver?: string;
  /** How long a call waits for an answer before it is denied, ms. */
  timeoutMs: number;
}

/** Default wait for an answer, ms (10 minutes). */
export const DEFAULT_APPROVAL_TIMEOUT_MS = 600_000;

/** Zod schema of `[agents.approvals]` (snake_case keys). */
export const ApprovalsTableSchema = z.lazy(() =>
  z.strictObject({
    rules: z
      .array(
        z.strictObject({
          tool: z.string().regex(/^(\*|[a-zA-Z0-9_.-]{1,128})$/, 'must be a tool name or "*"'),
          input: z
            .string()
            .min(1)
            .refine((s) => {
              try {
                new RegExp(s);
                return true;
              } catch {
                return false;
              }
            }, "must be a valid regular expression")
            .optional(),
        }),
      )
      .min(1, "must list at least one rule"),
    approver: z
      .string()
      .regex(/^[^:\s]+:[^:\s]+:\S+$/, 'must be "<channel>:<account>:<peer>"')
      .optional(),
    timeout_ms: z
      .number()
      .int()
      .min(1_000)
      .max(7 * 24 * 3_600_000)
      .optional(),
  }),
);

/** `[agents.approvals]` as read from the file to {@link AgentApprovals}. */
export function resolveApprovals(t: z.infer<typeof ApprovalsTableSchema>): AgentApprovals {
  return {
    // The pattern's source is its JSON form: a config reload compares configs as JSON and sees a changed pattern.
    rules: t.rules.map((r) => ({ tool: r.tool, ...(r.input !== undefined ? { input: Object.assign(new RegExp(r.input), { toJSON: () => r.input }) } : {}) })),
    ...(t.approver !== undefined ? { approver: t.approver } : {}),
    timeoutMs: t.timeout_ms ?? DEFAULT_APPROVAL_TIMEOUT_MS,
  };
}

/** Whether a call of `tool` with `input` needs a person's yes under `approvals`. */
export function needsApproval(approvals: AgentApprovals | undefined, tool: string, input: unknown): boolean {
  if (approvals === undefined) return false;
  let text: string | undefined;
  return approvals.rules.some((r) => {
    if (r.tool !== "*" && r.tool !== tool) return false;
    if (r.input === undefined) return true;
    text ??= JSON.stringify(input ?? null);
    return r.input.test(text);
  });
}
