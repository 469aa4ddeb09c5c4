import * as z from "zod";

// Params of the `cron.*` methods (docs/protocol.md, "cron.*"); gateway/cron-methods.ts validates with them.

const jobId = z.lazy(() =>
  z
    .string({ error: (i) => (i.input === undefined ? "id is required" : "id must be a string") })
    .regex(/^[A-Za-z0-9_.-]{1,96}$/, "id may use letters, digits, _ . and - (1-96 characters)"),
);

/** `cron.list {}`: every job. `cron.remove {id}`, `cron.run {id}`: one job. */
export const CronIdSchema = z.lazy(() => z.object({ id: jobId }));

/** `cron.add`: a job created at runtime (stored in the state dir); exactly one of cron, every, at. */
export const CronAddSchema = z.lazy(() =>
  z.object({
    id: jobId,
    agent: z.string().min(1, "agent must not be empty").optional(),
    cron: z.string().min(1).optional(),
    tz: z.string().min(1).optional(),
    every: z.string().min(1).optional(),
    at: z.string().min(1).optional(),
    prompt: z
      .string({ error: (i) => (i.input === undefined ? "prompt is required" : "prompt must be a string") })
      .min(1, "prompt must not be empty")
      .max(16 * 1024, "prompt is longer than 16384 characters"),
    session: z.string().min(1).optional(),
    deliver: z
      .object({
        channel: z.string().min(1),
        account: z.string().min(1).optional(),
        peer: z.string().min(1),
        thread: z.string().min(1).optional(),
      })
      .optional(),
    missed: z.enum(["skip", "run_once"], { error: 'missed must be "skip" or "run_once"' }).optional(),
  }),
);

/** `flows.get|cancel|resume {id}`. */
export const FlowIdSchema = z.lazy(() =>
  z.object({
    id: z
      .string({ error: (i) => (i.input === undefined ? "id is required" : "id must be a string") })
      .regex(/^f-[0-9a-f]{10}$/, "id must be a flow id (f-<10 hex digits>)"),
  }),
);
