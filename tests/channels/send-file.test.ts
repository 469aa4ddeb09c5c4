// The send_file tool's input checks (channels/send-file.ts): pure, against a channel's limits.
// The end-to-end path (plugins, fake platforms) is tests/e2e/channel-files.test.ts.
import { describe, expect, it } from "vitest";
import { fileFromInput, sendFileTool } from "../../host/src/channels/send-file.js";
import type { FileTarget } from "../../host/src/channels/index.js";

const LIMITS = { maxBytes: 1000, types: ["image/png", "image/jpeg", "text/plain", "text/csv", "application/pdf"] };
const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.alloc(40, 1)]);
const err = (input: unknown) => {
  const r = fileFromInput(input, LIMITS);
  return "error" in r ? r.error : undefined;
};

describe("fileFromInput", () => {
  it("builds a text document (UTF-8) and an image from base64 or a data: URL, the image's type from its bytes", () => {
    expect(fileFromInput({ name: "a.csv", text: "x,y\n1,2", mime: "text/csv", caption: "hi" }, LIMITS)).toEqual({
      name: "a.csv",
      mime: "text/csv",
      data: new TextEncoder().encode("x,y\n1,2"),
      caption: "hi",
    });
    const img = fileFromInput({ name: "p.png", data_base64: PNG.toString("base64") }, LIMITS);
    expect(img).toMatchObject({ name: "p.png", mime: "image/png" });
    expect(Buffer.compare(Buffer.from((img as { data: Uint8Array }).data), PNG)).toBe(0);
    expect(fileFromInput({ name: "p.png", data_base64: `data:image/png;base64,${PNG.toString("base64")}` }, LIMITS)).toMatchObject({ mime: "image/png" });
    expect(fileFromInput({ name: "n.txt", text: "note" }, LIMITS)).toMatchObject({ mime: "text/plain" });
  });

  it("refuses a target: peer, channel, account, thread", () => {
    for (const k of ["peer", "channel", "account", "thread"]) expect(err({ name: "a.txt", text: "x", [k]: "other" })).toContain(`"${k}" is not accepted`);
  });

  it("refuses a file over the limit, naming it, before decoding (base64 length) and after (text)", () => {
    expect(err({ name: "a.txt", text: "x".repeat(1001) })).toBe(
      "the file is 1001 bytes, over this channel's limit of 1000 bytes (media.send_max_bytes); nothing was sent",
    );
    // 2000 base64 characters are 1500 bytes: refused from the length alone (the content is not even valid).
    expect(err({ name: "a.bin", data_base64: "!".repeat(2000), mime: "application/pdf" })).toContain("1500 bytes, over this channel's limit of 1000 bytes");
    // Multi-byte text: under the limit in characters, over it in bytes.
    expect(err({ name: "a.txt", text: "é".repeat(600) })).toContain("1200 bytes, over");
  });

  it("refuses types the channel does not send, a declared type the bytes contradict, and an image type without image bytes", () => {
    expect(err({ name: "a.json", text: "{}", mime: "application/json" })).toContain("type application/json is not one this channel sends");
    expect(err({ name: "p.jpg", data_base64: PNG.toString("base64"), mime: "image/jpeg" })).toBe("the bytes are image/png, not the declared image/jpeg");
    expect(err({ name: "p.png", text: "not an image", mime: "image/png" })).toBe("the bytes are not a valid image/png file");
    expect(err({ name: "x.bin", data_base64: Buffer.from("abc").toString("base64") })).toContain("mime is required");
  });

  it("refuses names with a path or a leading dot, bad base64, both or neither content, long captions, unknown fields", () => {
    for (const name of ["../etc/passwd", "a/b.txt", "a\\b.txt", ".hidden", "", "x".repeat(101), "a\nb"])
      expect(err({ name, text: "x" }), name).toContain("name must be");
    expect(err({ name: "a.pdf", data_base64: "abc$", mime: "application/pdf" })).toBe("data_base64 is not valid base64");
    expect(err({ name: "a.txt" })).toBe("give exactly one of text and data_base64");
    expect(err({ name: "a.txt", text: "x", data_base64: "eA==" })).toBe("give exactly one of text and data_base64");
    expect(err({ name: "a.txt", text: "x", caption: "c".repeat(1025) })).toContain("caption must be");
    expect(err({ name: "a.txt", text: "x", path: "/etc/passwd" })).toBe('unknown field "path"');
    expect(err({ name: "a.txt", text: "" })).toBe("the file is empty");
  });
});

describe("the send_file tool", () => {
  const ctx = {
    agentId: "main",
    sessionKey: "agent:main:telegram:default:direct:42",
    session: { agent: "main", channel: "telegram", account: "default", peer: "42" },
  } as never;

  it("sends to the session's own channel, account and peer, and reports a channel that cannot send files", async () => {
    const sent: FileTarget[] = [];
    let support: "ok" | "no" = "ok";
    const tool = sendFileTool({
      channels: () => ({
        fileSupport: (channel) =>
          support === "ok" ? { ok: true, ...LIMITS } : { ok: false, reason: `channel "${channel}": its plugin "x" cannot send files (no send_file export)` },
        sendFile: async (t) => (sent.push(t), { platformMessageId: "42:7" }),
      }),
      logger: { warn() {} },
    });
    const r = await tool.call({ name: "a.txt", text: "hello" }, ctx);
    expect(r).toEqual({ content: "sent a.txt (text/plain, 5 bytes) to this conversation (platform message id 42:7)", isError: false });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ channel: "telegram", account: "default", peer: "42", file: { name: "a.txt", mime: "text/plain" } });
    support = "no";
    const refused = await tool.call({ name: "a.txt", text: "hello" }, ctx);
    expect(refused.isError).toBe(true);
    expect(refused.content).toContain("cannot send files (no send_file export)");
    expect(sent).toHaveLength(1);
  });
});
