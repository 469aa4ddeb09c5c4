export { createMemoryStore } from "./memory.js";
export type { SessionStore } from "./types.js";
