import { z } from "zod";

const PROVIDERS = ["anthropic", "openai", "ollama"] as const;

const selector = z.string().min(1);

const providerSchema = z.strictObject({
  base_url: z.url().optional(),
  api_key_env: z.string().min(1).optional(),
  timeout_ms: z.number().int().positive().optional(),
});

/** Schema of `exoclaw.toml` (snake_case keys, every section optional). */
export const FileConfigSchema = z.strictObject({
  gateway: z
    .strictObject({
      bind: z.string().min(1).optional(),
      port: z.number().int().min(0).max(65535).optional(),
      token: z.string().min(16, "token must be at least 16 characters").optional(),
      max_frame_bytes: z.number().int().min(1024).max(64 * 1024 * 1024).optional(),
      max_buffered_bytes: z.number().int().min(64 * 1024).optional(),
      shutdown_grace_ms: z.number().int().min(0).optional(),
      transport: z.enum(["auto", "uws", "ws"]).optional(),
    })
    .optional(),
  providers: z
    .strictObject({ anthropic: providerSchema.optional(), openai: providerSchema.optional(), ollama: providerSchema.optional() })
    .optional(),
  agents: z
    .array(
      z.strictObject({
        id: z.string().regex(/^[A-Za-z0-9_-]+$/, "agent id may use letters, digits, _ and -"),
        provider: z.enum(PROVIDERS).optional(),
        model: z.string().min(1).optional(),
        system_prompt: z.string().optional(),
        max_iterations: z.number().int().min(1).max(1000).optional(),
        max_tokens: z.number().int().min(1).optional(),
        tools: z.array(z.string().min(1)).optional(),
      }),
    )
    .optional(),
  default_agent: z.string().optional(),
  bindings: z
    .array(
      z.strictObject({
        agent: z.string().min(1),
        channel: selector.optional(),
        account: selector.optional(),
        peer: selector.optional(),
        guild: selector.optional(),
        team: selector.optional(),
      }),
    )
    .optional(),
  plugins: z
    .strictObject({
      dirs: z.array(z.string().min(1)).optional(),
      max_instances: z.number().int().min(1).max(64).optional(),
    })
    .optional(),
});

export type FileConfig = z.infer<typeof FileConfigSchema>;
