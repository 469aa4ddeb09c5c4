/** Opening the agents' memory for a gateway: where the notes file lives. */
import { join } from "node:path";
import type { Logger } from "pino";
import { openVectorTable, type OpenVectorTableOptions, type SessionLog } from "../../store/index.js";
import { NoteStore } from "./notes.js";
import { MemoryService } from "./service.js";
import type { ProviderEndpoint } from "../../config/index.js";
import { createEmbedder, type EmbeddingProvider } from "./embeddings.js";

/** The notes file of a state directory: `<stateDir>/memory/notes.jsonl`. */
export function notesFile(stateDir: string): string {
  return join(stateDir, "memory", "notes.jsonl");
}

/**
 * The memory service of a gateway: notes persisted in {@link notesFile}, their vectors in the
 * store when it is embedded SurrealDB on disk — except with the
 * in-process `memory` session store, whose sessions do not outlive the process either (notes
 * then live in process too).
 * @throws Error when the notes file exists but cannot be read
 */
export async function openMemoryService(options: {
  stateDir: string;
  log: SessionLog;
  logger: Logger;
  /** The configured provider endpoints (keys, base URLs) the embedders use. */
  providers?: Partial<Record<EmbeddingProvider, ProviderEndpoint>>;
  /**
   * The `[store]` settings `log` was opened with: an embedded store on disk keeps the notes'
   * vectors (store/vectors.ts); absent or another store = vectors in process only.
   */
  store?: OpenVectorTableOptions | undefined;
  /** Embedding models (`provider/model`) whose stored vectors are read at once (in the background). */
  preload?: readonly string[] | undefined;
}): Promise<MemoryService> {
  const { stateDir, log, logger, providers } = options;
  const vectors = options.store !== undefined && log.kind !== "memory" ? await openVectorTable(options.store) : undefined;
  const notes = await NoteStore.open({ file: log.kind === "memory" ? undefined : notesFile(stateDir), logger });
  const embedders = (p: EmbeddingProvider) => {
    const endpoint = providers?.[p];
    return endpoint ? createEmbedder(p, endpoint) : undefined;
  };
  const service = new MemoryService({ notes, log, logger, embedders, vectors });
  if (vectors !== undefined && options.preload !== undefined) void service.preloadVectors(options.preload);
  return service;
}
