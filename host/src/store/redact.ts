import { processSecrets, type SecretRegistry } from "../log/index.js";
import type { NewSessionEvent } from "./types.js";

/**
 * One kind of secret the redactor recognises. Matches are replaced with `[redacted:<kind>]`;
 * patterns with `keep` keep a leading part of the match (e.g. `password=` or `Bearer `) so the
 * text stays readable. Patterns run in list order on the output of the previous one.
 */
export interface RedactionPattern {
  kind: string;
  /** What it matches, for docs. */
  description: string;
  /** Global regular expression. */
  regex: RegExp;
  /** Number of the capture group to keep in front of the marker (see above). */
  keep?: number;
}

/**
 * The default secret patterns, most specific first. Exported so docs can cite them.
 * They aim at well-known token formats; they are a safety net, not a guarantee.
 */
export const REDACTION_PATTERNS: readonly RedactionPattern[] = [
  {
    kind: "private_key",
    description: "PEM private key blocks (-----BEGIN … PRIVATE KEY----- … -----END … PRIVATE KEY-----; an unterminated block to the end of the text)",
    regex: /-----BEGIN ((?:[A-Z0-9]+ )*)PRIVATE KEY( BLOCK)?-----[\s\S]*?(?:-----END \1PRIVATE KEY\2-----|$(?![\s\S]))/g,
  },
  {
    kind: "anthropic_key",
    description: "Anthropic API keys: sk-ant-…",
    regex: /\bsk-ant-[A-Za-z0-9_-]{16,}/g,
  },
  {
    kind: "openai_key",
    description: "OpenAI-style API keys: sk-…, sk-proj-…, sk-svcacct-… (20+ characters after the prefix)",
    regex: /\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}/g,
  },
  {
    kind: "google_api_key",
    description: "Google API keys (Gemini API keys among them): AIza + 35 letters, digits, _ or -",
    regex: /\bAIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])/g,
  },
  {
    kind: "aws_access_key",
    description: "AWS access key ids: AKIA…/ASIA… + 16 upper-case letters or digits",
    regex: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g,
  },
  {
    kind: "github_token",
    description: "GitHub tokens: ghp_/gho_/ghu_/ghs_/ghr_ + 36+ characters, github_pat_…",
    regex: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})/g,
  },
  {
    kind: "slack_token",
    description: "Slack tokens: xoxb-, xoxp-, xoxa-, xoxr-, xoxs-…",
    regex: /\bxox[abprs]-[A-Za-z0-9-]{10,}/g,
  },
  {
    kind: "bearer",
    description: "HTTP bearer tokens: `Bearer <token>` (the word Bearer is kept)",
    regex: /\b(Bearer\s+)[A-Za-z0-9._~+/=-]{8,}/gi,
    keep: 1,
  },
  {
    kind: "password",
    description:
      "password-style pairs: password/passwd/pwd/api_key/secret_key/client_secret/access_token/auth_token/refresh_token = or : value, quoted or not, also JSON (the name is kept)",
    regex:
      /(?<![A-Za-z0-9])((?:password|passwd|pwd|client[_-]?secret|secret[_-]?key|api[_-]?key|access[_-]?token|auth[_-]?token|refresh[_-]?token)["']?\s*[:=]\s*)(?!\[redacted:)(?:"(?:[^"\\\r\n]|\\.)+"|'[^'\r\n]+'|[^\s"'&;,}\]]+)/gi,
    keep: 1,
  },
];

/**
 * Replaces every secret in `text`: first the exact values the gateway knows (its API keys,
 * tokens, plugin secrets: `secrets`) with `[REDACTED]`, then every pattern match with
 * `[redacted:<kind>]`.
 * @param patterns the patterns to apply; default {@link REDACTION_PATTERNS}
 * @param secrets known secret values; default the process registry (empty outside a gateway)
 * @returns the redacted text and how many replacements were made
 */
export function redactText(
  text: string,
  patterns: readonly RedactionPattern[] = REDACTION_PATTERNS,
  secrets: SecretRegistry = processSecrets,
): { text: string; count: number } {
  const known = secrets.scrubCount(text);
  let count = known.count;
  let out = known.text;
  for (const p of patterns) {
    out = out.replace(p.regex, (match: string, ...groups: unknown[]) => {
      if (match.startsWith("[redacted:")) return match;
      count++;
      const kept = p.keep !== undefined && typeof groups[p.keep - 1] === "string" ? (groups[p.keep - 1] as string) : "";
      return `${kept}[redacted:${p.kind}]`;
    });
  }
  return { text: out, count };
}

function redactDeep(value: unknown, patterns: readonly RedactionPattern[], secrets: SecretRegistry): unknown {
  if (typeof value === "string") return redactText(value, patterns, secrets).text;
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, patterns, secrets));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redactDeep(v, patterns, secrets)]));
  }
  return value;
}

/**
 * Returns a copy of the event with secrets redacted from its free-text fields (pure apart from
 * the process's secret registry, see {@link redactText}): message
 * content, assistant text, tool results, every string inside a tool call's input, error
 * messages, compaction summaries and reset reasons. Ids, names and addresses are left alone.
 */
export function redactEvent(
  event: NewSessionEvent,
  patterns: readonly RedactionPattern[] = REDACTION_PATTERNS,
  secrets: SecretRegistry = processSecrets,
): NewSessionEvent {
  const r = (s: string) => redactText(s, patterns, secrets).text;
  switch (event.kind) {
    case "message_received":
      return { ...event, data: { ...event.data, content: r(event.data.content) } };
    case "assistant_text":
      return { ...event, data: { ...event.data, text: r(event.data.text) } };
    case "tool_use":
      return { ...event, data: { ...event.data, input: redactDeep(event.data.input, patterns, secrets) } };
    case "tool_result":
      return { ...event, data: { ...event.data, content: r(event.data.content) } };
    case "error":
      return { ...event, data: { ...event.data, message: r(event.data.message) } };
    case "compaction":
      return { ...event, data: { ...event.data, summary: r(event.data.summary) } };
    case "approval_pending":
      return { ...event, data: { ...event.data, input: redactDeep(event.data.input, patterns, secrets) } };
    case "reset":
      return event.data.reason === undefined ? event : { ...event, data: { ...event.data, reason: r(event.data.reason) } };
    default:
      return event;
  }
}
