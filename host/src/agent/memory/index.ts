/** The agents' memory: notes, recall, the per-turn memory block, forgetting (docs/memory.md). */
export { assembleMemory, MEMORY_CONTEXT_ACK, MEMORY_CONTEXT_PREFIX, type AssembledMemory, type MemoryItem } from "./assemble.js";
export { forgetPeer, type ForgetDeps, type ForgetResult, type ForgetTarget } from "./forget.js";
export { NoteStore, NoteError, MAX_NOTE_CHARS, type Note, type NoteHit, type NoteStoreOptions } from "./notes.js";
export { MEMORY_SHARES, matchesFilter, readable, type MemoryScope, type MemoryShare, type ScopeFilter } from "./scope.js";
export { DEFAULT_MEMORY_POLICY, MemoryService, type MemoryPolicy, type MemoryServiceOptions } from "./service.js";
export { MEMORY_TOOL, MEMORY_TOOL_SPEC, SESSION_SEARCH, SESSION_SEARCH_SPEC } from "./tools.js";
export { TextIndex, tokenize } from "./text-index.js";
export { createEmbedder, cosine, EMBEDDING_PROVIDERS, type Embedder, type EmbeddingProvider } from "./embeddings.js";
export { openMemoryService, notesFile } from "./open.js";
