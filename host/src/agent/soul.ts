/**
 * Soul files (`[[agents]] soul`): markdown that becomes (part of) an agent's system prompt and is
 * re-read when it changes on disk, so an operator can edit an agent's personality without a
 * restart.
 */
import { readFile, stat } from "node:fs/promises";
import type { Logger } from "pino";
import type { AgentConfig } from "../config/index.js";
import { ErrorCode, RpcError } from "../protocol/index.js";

/** Largest soul file read, bytes (a system prompt beyond this is almost certainly a mistake). */
export const MAX_SOUL_BYTES = 1024 * 1024;

interface Cached {
  /** File identity and version: a change of any of them means the file must be read again. */
  ino: number;
  mtimeMs: number;
  size: number;
  content: string;
  /** The failure last warned about while this content was kept, so it is logged once. */
  warned?: string;
}

/**
 * `systemPrompt` and the soul file's content joined by a blank line; either alone when the other
 * is absent or empty; undefined when both are.
 */
export function joinSystemPrompt(systemPrompt: string | undefined, soul: string | undefined): string | undefined {
  const parts = [systemPrompt, soul].filter((p): p is string => p !== undefined && p.length > 0);
  return parts.length > 0 ? parts.join("\n\n") : undefined;
}

/**
 * Reads agents' soul files, caching each by path. Every turn `stat`s the file (one syscall) and
 * reads it again only when its inode, modification time or size changed.
 *
 * Failure policy: when the file cannot be read (missing, unreadable, a directory, larger than
 * {@link MAX_SOUL_BYTES}) and an earlier read succeeded, the last good content is kept and a
 * warning naming the file is logged (once per failure) — an editor that saves by rename briefly
 * removes the file, and a turn should not fail for that. With no good content yet, the turn fails
 * with an error naming the agent and the file.
 */
export class SoulFiles {
  private readonly cache = new Map<string, Cached>();

  constructor(private readonly logger: Logger) {}

  /**
   * The agent's system prompt for a turn starting now: `systemPrompt`, then a blank line, then
   * the soul file's content with trailing whitespace removed.
   * @throws RpcError -32603 naming the agent and the file when the soul file was never readable
   */
  async systemPrompt(config: AgentConfig): Promise<string | undefined> {
    if (config.soulFile === undefined) return config.systemPrompt;
    return joinSystemPrompt(config.systemPrompt, await this.content(config.id, config.soulFile));
  }

  private async content(agentId: string, path: string): Promise<string> {
    const cached = this.cache.get(path);
    try {
      const st = await stat(path);
      if (cached && cached.ino === st.ino && cached.mtimeMs === st.mtimeMs && cached.size === st.size) return cached.content;
      if (!st.isFile()) throw new Error("not a regular file");
      if (st.size > MAX_SOUL_BYTES) throw new Error(`larger than ${MAX_SOUL_BYTES} bytes (${st.size})`);
      const content = (await readFile(path, "utf8")).trimEnd();
      this.cache.set(path, { ino: st.ino, mtimeMs: st.mtimeMs, size: st.size, content });
      if (cached) this.logger.info({ agent: agentId, soulFile: path, chars: content.length }, "soul file changed: system prompt reloaded");
      return content;
    } catch (err) {
      const reason = (err as Error).message;
      if (cached) {
        if (cached.warned !== reason) {
          cached.warned = reason;
          this.logger.warn({ agent: agentId, soulFile: path, error: reason }, "cannot read the soul file; keeping its last good content");
        }
        return cached.content;
      }
      throw new RpcError(ErrorCode.InternalError, `agent "${agentId}": cannot read its soul file ${path}: ${reason}`);
    }
  }
}
