// Helpers the provider modules use to normalize their request bodies into a Conversation.

/**
 * Text of a message content: a plain string, or an array of blocks/parts of which the
 * `{type: "text", text}` ones are joined (Anthropic blocks and OpenAI parts share that shape).
 * @param {unknown} content
 * @returns {string}
 */
export function contentText(content) {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .filter((block) => block?.type === "text" && typeof block.text === "string")
    .map((block) => block.text)
    .join("\n");
}

/**
 * Text of the latest `role: "user"` message that has any text.
 * @param {any[]} messages
 * @returns {string}
 */
export function lastUserText(messages) {
  for (let i = messages.length - 1; i >= 0; i--) {
    const message = messages[i];
    if (message?.role !== "user") continue;
    const text = contentText(message.content);
    if (text) return text;
  }
  return "";
}

/**
 * The run of messages at the end of `messages` that satisfy `predicate`, in order.
 * @param {any[]} messages
 * @param {(message: any) => boolean} predicate
 * @returns {any[]}
 */
export function trailing(messages, predicate) {
  let start = messages.length;
  while (start > 0 && predicate(messages[start - 1])) start--;
  return messages.slice(start);
}

/**
 * Names of the tools offered: OpenAI/Ollama `{type: "function", function: {name}}` or
 * Anthropic `{name, input_schema}`.
 * @param {unknown} tools
 * @returns {string[]}
 */
export function toolNames(tools) {
  if (!Array.isArray(tools)) return [];
  return tools.map((tool) => tool?.function?.name ?? tool?.name).filter((n) => typeof n === "string");
}

/**
 * @param {unknown} messages
 * @returns {any[]}
 */
export function messageList(messages) {
  return Array.isArray(messages) ? messages : [];
}
