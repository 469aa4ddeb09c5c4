/**
 * Migration 6: `memory_vector`, the embeddings of the agents' notes (vector recall, issue 19;
 * `store/vectors.ts`, docs/memory.md "Storage"). One row per (embedding model, note):
 * `memory_vector:[model, note]`, the vector as little-endian float32 bytes and a checksum of
 * the note it was made from. No HNSW index: measured slower than the in-process scan.
 */
export const sql = /* surql */ `
DEFINE TABLE memory_vector SCHEMAFULL;
DEFINE FIELD note ON memory_vector TYPE int;
DEFINE FIELD sum ON memory_vector TYPE int;
DEFINE FIELD vector ON memory_vector TYPE bytes;
DEFINE INDEX memory_vector_note ON memory_vector FIELDS note;
`;
