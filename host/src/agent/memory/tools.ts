/**
 * The specs of the memory built-in tools the model sees: `memory` (the host's notes, same input
 * as the `memory` plugin's tool, which it replaces for agents with `[agents.memory]`) and
 * `session_search` (BM25 over this conversation's own past).
 */
import type { ToolSpec } from "../../plugins/index.js";
import { MAX_NOTE_CHARS } from "./notes.js";

/** Name of the built-in notes tool. */
export const MEMORY_TOOL = "memory";
/** Name of the built-in session search tool. */
export const SESSION_SEARCH = "session_search";

/** The JSON schema the model sees for `memory`. */
export const MEMORY_TOOL_SPEC: ToolSpec = {
  name: MEMORY_TOOL,
  description:
    'Long-term notes about this conversation that outlast it. "remember" stores `note` (a short fact worth keeping, e.g. a preference or a date) ' +
    'and returns its number; "recall" returns the notes best matching `query` (the newest notes when `query` is empty); "forget" deletes note `id`. ' +
    "Your newest notes and the ones relevant to each message are shown to you before it, so recall only to look further.",
  inputSchema: {
    type: "object",
    required: ["action"],
    additionalProperties: false,
    properties: {
      action: { type: "string", enum: ["remember", "recall", "forget"] },
      note: { type: "string", maxLength: MAX_NOTE_CHARS, description: `For "remember": the note, at most ${MAX_NOTE_CHARS} characters.` },
      query: { type: "string", maxLength: 500, description: 'For "recall": words to look for; empty for the newest notes.' },
      id: { type: "integer", minimum: 1, description: 'For "forget": the note\'s number, as shown by remember and recall.' },
    },
  },
};

/** The JSON schema the model sees for `session_search`. */
export const SESSION_SEARCH_SPEC: ToolSpec = {
  name: SESSION_SEARCH,
  description:
    "Search this conversation's own past messages (earlier sessions included), best matches first, each with its date and who said it. " +
    "Use it when the user refers to something said before that is not in view.",
  inputSchema: {
    type: "object",
    required: ["query"],
    additionalProperties: false,
    properties: {
      query: { type: "string", minLength: 1, maxLength: 500, description: "words to look for (any of them; rarer words weigh more)" },
      limit: { type: "integer", minimum: 1, maximum: 20, description: "most hits to return; default 5" },
    },
  },
};
