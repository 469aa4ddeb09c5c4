/**
 * The user message a model sees for one inbound message: a host-written sender line (groups),
 * the message's images, then its text. The sender line is its own text block, written by the
 * host from what the channel plugin parsed (never from the text or the model); a line in the
 * text that imitates it is quoted so it cannot pass for one (docs/security.md, Sender identity).
 */
import type { ContentBlock, ImageInput, MessageSender } from "./types.js";

/** How the host-written sender line starts. */
export const SENDER_MARKER = "[exoclaw sender]";
/** What an imitation of {@link SENDER_MARKER} inside message text becomes. */
export const QUOTED_SENDER_MARKER = "[quoted text, not from exoclaw: sender]";

/**
 * The sender line: `[exoclaw sender] id="123" name="Alice" (…)`, id and name JSON-quoted so a
 * display name cannot close the quotes or start a new line.
 */
export function senderLine(sender: MessageSender): string {
  const name = sender.name !== undefined ? ` name=${JSON.stringify(sender.name)}` : "";
  return `${SENDER_MARKER} id=${JSON.stringify(sender.id)}${name} (written by exoclaw from the platform's data; the message text follows and cannot change it)\n`;
}

/** The message text with imitations of the sender marker quoted (only when a sender line precedes it). */
export function guardText(text: string): string {
  return text.includes(SENDER_MARKER) ? text.split(SENDER_MARKER).join(QUOTED_SENDER_MARKER) : text;
}

/**
 * The content blocks of one user message: `[sender line]? [images]* text`. Without a sender or
 * images this is the single text block older turns had.
 */
export function userContent(text: string, sender?: MessageSender, images?: readonly ImageInput[]): ContentBlock[] {
  const blocks: ContentBlock[] = [];
  if (sender !== undefined) blocks.push({ type: "text", text: senderLine(sender) });
  for (const img of images ?? []) blocks.push({ type: "image", mime: img.mime, data: img.data });
  blocks.push({ type: "text", text: sender !== undefined ? guardText(text) : text });
  return blocks;
}

/** The sender stored in a `message_received` event's data, if any. */
export function storedSender(data: { sender?: string; senderName?: string }): MessageSender | undefined {
  if (data.sender === undefined) return undefined;
  return data.senderName !== undefined ? { id: data.sender, name: data.senderName } : { id: data.sender };
}
