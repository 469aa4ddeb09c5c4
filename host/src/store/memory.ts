import type { SessionStore } from "./types.js";

/** An in-process session store; history is lost when the process exits. */
export function createMemoryStore<M>(): SessionStore<M> {
  const sessions = new Map<string, M[]>();
  return {
    async load(key) {
      return sessions.get(key)?.slice() ?? [];
    },
    async append(key, messages) {
      if (messages.length === 0) return;
      const list = sessions.get(key);
      if (list) list.push(...messages);
      else sessions.set(key, messages.slice());
    },
    count() {
      return sessions.size;
    },
  };
}
