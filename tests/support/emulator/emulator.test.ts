// Proves the emulator speaks the wire formats the official SDKs parse: every provider path is
// driven through the real @anthropic-ai/sdk, openai, ollama and @google/genai clients.
import { spawn } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import Anthropic from "@anthropic-ai/sdk";
import { ApiError, GoogleGenAI, type Content, type GenerateContentResponse } from "@google/genai";
import { Ollama } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startEmulator, type Emulator } from "./server.mjs";

const MODEL = "test-model";
const QUESTION = "what is 12.5 * (3 + 4)?";
const EXPRESSION = "12.5 * (3 + 4)";

let emulator: Emulator;

beforeAll(async () => {
  emulator = await startEmulator();
});
afterAll(async () => {
  await emulator.close();
});
beforeEach(() => {
  emulator.reset();
});

// ---------------------------------------------------------------- Anthropic

describe("Anthropic Messages API", () => {
  const calculator: Anthropic.Tool = {
    name: "calculator",
    description: "Evaluate an arithmetic expression",
    input_schema: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] },
  };
  const client = () => new Anthropic({ apiKey: "test", baseURL: emulator.url, maxRetries: 0 });
  const stream = (messages: Anthropic.MessageParam[], tools: Anthropic.Tool[] = [calculator]) =>
    client().messages.stream({ model: MODEL, max_tokens: 256, messages, tools });
  const toolUses = (message: Anthropic.Message) => message.content.filter((b): b is Anthropic.ToolUseBlock => b.type === "tool_use");

  it("streams an echo as several text deltas", async () => {
    const s = stream([{ role: "user", content: "hello there friend" }]);
    const deltas: string[] = [];
    s.on("text", (delta) => deltas.push(delta));
    const message = await s.finalMessage();
    expect(message.content).toEqual([{ type: "text", text: "You said: hello there friend" }]);
    expect(deltas.length).toBeGreaterThanOrEqual(3);
    expect(message.id).toMatch(/^msg_/);
    expect(message.model).toBe(MODEL);
    expect(message.stop_reason).toBe("end_turn");
    expect(message.usage.input_tokens).toBeGreaterThan(0);
    expect(message.usage.output_tokens).toBe(5);
  });

  it("answers ping with pong in a single delta", async () => {
    const s = stream([{ role: "user", content: "ping" }], []);
    const deltas: string[] = [];
    s.on("text", (delta) => deltas.push(delta));
    await s.finalMessage();
    expect(deltas).toEqual(["pong"]);
  });

  it("streams a text block then a tool_use whose partial JSON parses to the input", async () => {
    const s = stream([{ role: "user", content: QUESTION }]);
    const partials: string[] = [];
    s.on("inputJson", (partial) => partials.push(partial));
    const message = await s.finalMessage();
    expect(message.stop_reason).toBe("tool_use");
    expect(message.content[0]).toEqual({ type: "text", text: "Let me calculate." });
    const [call] = toolUses(message);
    expect(call?.id).toMatch(/^toolu_/);
    expect(call?.name).toBe("calculator");
    expect(call?.input).toEqual({ expression: EXPRESSION });
    expect(partials.length).toBeGreaterThan(1);
  });

  it("emits parallel tool calls with unique ids", async () => {
    const message = await stream([{ role: "user", content: "calc: 1+1; 2*3; 10/4" }]).finalMessage();
    const calls = toolUses(message);
    expect(calls.map((c) => c.input)).toEqual([{ expression: "1+1" }, { expression: "2*3" }, { expression: "10/4" }]);
    expect(new Set(calls.map((c) => c.id)).size).toBe(3);
  });

  it("answers tool results with their contents", async () => {
    const first = await stream([{ role: "user", content: "calc: 1+1; 2*3" }]).finalMessage();
    const results = toolUses(first).map((c, i) => ({
      type: "tool_result" as const,
      tool_use_id: c.id,
      content: i === 0 ? "2" : [{ type: "text" as const, text: "6" }],
    }));
    const message = await stream([
      { role: "user", content: "calc: 1+1; 2*3" },
      { role: "assistant", content: first.content },
      { role: "user", content: results },
    ]).finalMessage();
    expect(message.content).toEqual([{ type: "text", text: "The answer is 2, 6." }]);
    expect(message.stop_reason).toBe("end_turn");
  });

  it("keeps calling the tool with LOOP_FOREVER", async () => {
    const message = await stream([
      { role: "user", content: "LOOP_FOREVER" },
      { role: "assistant", content: [{ type: "tool_use", id: "toolu_x", name: "calculator", input: { expression: "1+1" } }] },
      { role: "user", content: [{ type: "tool_result", tool_use_id: "toolu_x", content: "2" }] },
    ]).finalMessage();
    expect(toolUses(message).map((c) => c.input)).toEqual([{ expression: "1+1" }]);
  });

  it("returns the full message without streaming", async () => {
    const message = await client().messages.create({
      model: MODEL,
      max_tokens: 256,
      tools: [calculator],
      messages: [{ role: "user", content: QUESTION }],
    });
    expect(message.type).toBe("message");
    expect(toolUses(message)[0]?.input).toEqual({ expression: EXPRESSION });
  });

  it("surfaces FAIL_500 as InternalServerError", async () => {
    const error = await stream([{ role: "user", content: "FAIL_500" }])
      .finalMessage()
      .catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.InternalServerError);
    expect(error.error).toMatchObject({ type: "error", error: { type: "api_error" } });
  });

  it("surfaces FAIL_400 as BadRequestError", async () => {
    const error = await stream([{ role: "user", content: "FAIL_400" }])
      .finalMessage()
      .catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.BadRequestError);
    expect(error.error).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("surfaces FAIL_ERROR_EVENT as an overloaded APIError after a delta", async () => {
    const s = stream([{ role: "user", content: "FAIL_ERROR_EVENT" }]);
    const deltas: string[] = [];
    s.on("text", (delta) => deltas.push(delta));
    const error = await s.finalMessage().catch((e) => e);
    expect(error).toBeInstanceOf(Anthropic.APIError);
    expect(error.error).toMatchObject({ type: "error", error: { type: "overloaded_error", message: "Overloaded" } });
    expect(deltas).toEqual(["Partial "]);
  });

  it("surfaces FAIL_CUT as an error", async () => {
    await expect(stream([{ role: "user", content: "FAIL_CUT" }]).finalMessage()).rejects.toThrow();
  });

  it("rejects every failure mode without streaming too", async () => {
    const create = (content: string) => client().messages.create({ model: MODEL, max_tokens: 16, messages: [{ role: "user", content }] });
    await expect(create("FAIL_500")).rejects.toBeInstanceOf(Anthropic.InternalServerError);
    await expect(create("FAIL_400")).rejects.toBeInstanceOf(Anthropic.BadRequestError);
    await expect(create("FAIL_ERROR_EVENT")).rejects.toMatchObject({ status: 529 });
    await expect(create("FAIL_CUT")).rejects.toThrow();
  });
});

// ---------------------------------------------------------------- OpenAI

describe("OpenAI Chat Completions", () => {
  const calculator: OpenAI.ChatCompletionTool = {
    type: "function",
    function: {
      name: "calculator",
      description: "Evaluate an arithmetic expression",
      parameters: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] },
    },
  };
  const client = () => new OpenAI({ apiKey: "test", baseURL: `${emulator.url}/v1`, maxRetries: 0 });

  type Collected = {
    text: string;
    deltas: string[];
    calls: { id: string; name: string; arguments: string }[];
    finish: string | null;
    usage: OpenAI.CompletionUsage | null;
    usageChunkChoices: number | null;
  };

  /** Stream a completion and accumulate its chunks the way a host would. */
  async function collect(messages: OpenAI.ChatCompletionMessageParam[], tools = [calculator]): Promise<Collected> {
    const stream = await client().chat.completions.create({
      model: MODEL,
      messages,
      tools,
      stream: true,
      stream_options: { include_usage: true },
    });
    const out: Collected = { text: "", deltas: [], calls: [], finish: null, usage: null, usageChunkChoices: null };
    for await (const chunk of stream) {
      if (chunk.usage) {
        out.usage = chunk.usage;
        out.usageChunkChoices = chunk.choices.length;
      }
      const choice = chunk.choices[0];
      if (!choice) continue;
      if (choice.delta.content) {
        out.text += choice.delta.content;
        out.deltas.push(choice.delta.content);
      }
      for (const call of choice.delta.tool_calls ?? []) {
        const slot = (out.calls[call.index] ??= { id: "", name: "", arguments: "" });
        slot.id += call.id ?? "";
        slot.name += call.function?.name ?? "";
        slot.arguments += call.function?.arguments ?? "";
      }
      out.finish = choice.finish_reason ?? out.finish;
    }
    return out;
  }

  it("streams an echo as several content deltas, with a final usage chunk", async () => {
    const out = await collect([{ role: "user", content: "hello there friend" }]);
    expect(out.text).toBe("You said: hello there friend");
    expect(out.deltas.length).toBeGreaterThanOrEqual(3);
    expect(out.finish).toBe("stop");
    expect(out.usageChunkChoices).toBe(0);
    expect(out.usage?.prompt_tokens).toBeGreaterThan(0);
    expect(out.usage?.completion_tokens).toBe(5);
    expect(out.usage?.total_tokens).toBe((out.usage?.prompt_tokens ?? 0) + 5);
  });

  it("streams a tool call whose split arguments parse to the input", async () => {
    const out = await collect([{ role: "user", content: QUESTION }]);
    expect(out.finish).toBe("tool_calls");
    expect(out.calls).toHaveLength(1);
    expect(out.calls[0]?.id).toMatch(/^call_/);
    expect(out.calls[0]?.name).toBe("calculator");
    expect(JSON.parse(out.calls[0]?.arguments ?? "")).toEqual({ expression: EXPRESSION });
  });

  it("is parsed by the SDK's own stream accumulator", async () => {
    const runner = client().chat.completions.stream({
      model: MODEL,
      messages: [{ role: "user", content: QUESTION }],
      tools: [calculator],
    });
    const completion = await runner.finalChatCompletion();
    const call = completion.choices[0]?.message.tool_calls?.[0];
    expect(call?.type).toBe("function");
    if (call?.type !== "function") throw new Error("expected a function call");
    expect(JSON.parse(call.function.arguments)).toEqual({ expression: EXPRESSION });
  });

  it("emits parallel tool calls with unique ids", async () => {
    const out = await collect([{ role: "user", content: "calc: 1+1; 2*3; 10/4" }]);
    expect(out.calls.map((c) => JSON.parse(c.arguments))).toEqual([{ expression: "1+1" }, { expression: "2*3" }, { expression: "10/4" }]);
    expect(new Set(out.calls.map((c) => c.id)).size).toBe(3);
  });

  it("answers tool results with their contents", async () => {
    const first = await collect([{ role: "user", content: "calc: 1+1; 2*3" }]);
    const out = await collect([
      { role: "user", content: "calc: 1+1; 2*3" },
      {
        role: "assistant",
        content: null,
        tool_calls: first.calls.map((c) => ({
          id: c.id,
          type: "function" as const,
          function: { name: c.name, arguments: c.arguments },
        })),
      },
      { role: "tool", tool_call_id: first.calls[0]?.id ?? "", content: "2" },
      { role: "tool", tool_call_id: first.calls[1]?.id ?? "", content: [{ type: "text", text: "6" }] },
    ]);
    expect(out.text).toBe("The answer is 2, 6.");
    expect(out.finish).toBe("stop");
  });

  it("returns the full completion without streaming", async () => {
    const completion = await client().chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: QUESTION }],
      tools: [calculator],
    });
    expect(completion.object).toBe("chat.completion");
    expect(completion.choices[0]?.finish_reason).toBe("tool_calls");
    const call = completion.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== "function") throw new Error("expected a function call");
    expect(JSON.parse(call.function.arguments)).toEqual({ expression: EXPRESSION });
    expect(completion.usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it("surfaces FAIL_500 as InternalServerError", async () => {
    const error = await collect([{ role: "user", content: "FAIL_500" }]).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.InternalServerError);
    expect(error.type).toBe("server_error");
  });

  it("surfaces FAIL_400 as BadRequestError", async () => {
    const error = await collect([{ role: "user", content: "FAIL_400" }]).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.BadRequestError);
    expect(error.type).toBe("invalid_request_error");
  });

  it("surfaces FAIL_ERROR_EVENT as an APIError mid-stream", async () => {
    const error = await collect([{ role: "user", content: "FAIL_ERROR_EVENT" }]).catch((e) => e);
    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect(error.message).toContain("Overloaded");
  });

  it("surfaces FAIL_CUT as an error", async () => {
    await expect(collect([{ role: "user", content: "FAIL_CUT" }])).rejects.toThrow();
  });

  it("rejects every failure mode without streaming too", async () => {
    const create = (content: string) => client().chat.completions.create({ model: MODEL, messages: [{ role: "user", content }] });
    await expect(create("FAIL_500")).rejects.toBeInstanceOf(OpenAI.InternalServerError);
    await expect(create("FAIL_400")).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    await expect(create("FAIL_ERROR_EVENT")).rejects.toMatchObject({ status: 503 });
    await expect(create("FAIL_CUT")).rejects.toThrow();
  });
});

// ---------------------------------------------------------------- Ollama

describe("Ollama chat", () => {
  const calculator = {
    type: "function",
    function: {
      name: "calculator",
      description: "Evaluate an arithmetic expression",
      parameters: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] },
    },
  };
  type OllamaMessage = { role: string; content: string; tool_calls?: { function: { name: string; arguments: Record<string, unknown> } }[] };
  const client = () => new Ollama({ host: emulator.url });

  async function collect(messages: OllamaMessage[], tools = [calculator]) {
    const stream = await client().chat({ model: MODEL, messages, tools, stream: true });
    const out = { text: "", deltas: [] as string[], calls: [] as NonNullable<OllamaMessage["tool_calls"]>, final: null as any };
    for await (const part of stream) {
      if (part.message.content) {
        out.text += part.message.content;
        out.deltas.push(part.message.content);
      }
      out.calls.push(...(part.message.tool_calls ?? []));
      if (part.done) out.final = part;
    }
    return out;
  }

  it("streams an echo as several NDJSON lines and a final done line", async () => {
    const out = await collect([{ role: "user", content: "hello there friend" }]);
    expect(out.text).toBe("You said: hello there friend");
    expect(out.deltas.length).toBeGreaterThanOrEqual(3);
    expect(out.final).toMatchObject({ model: MODEL, done: true, done_reason: "stop", eval_count: 5 });
    expect(out.final.prompt_eval_count).toBeGreaterThan(0);
  });

  it("sends a tool call with an object argument", async () => {
    const out = await collect([{ role: "user", content: QUESTION }]);
    expect(out.calls).toEqual([{ function: { name: "calculator", arguments: { expression: EXPRESSION } } }]);
  });

  it("sends parallel tool calls in one message", async () => {
    const out = await collect([{ role: "user", content: "calc: 1+1; 2*3" }]);
    expect(out.calls.map((c) => c.function.arguments)).toEqual([{ expression: "1+1" }, { expression: "2*3" }]);
  });

  it("answers tool results with their contents", async () => {
    const first = await collect([{ role: "user", content: "calc: 1+1; 2*3" }]);
    const out = await collect([
      { role: "user", content: "calc: 1+1; 2*3" },
      { role: "assistant", content: "", tool_calls: first.calls },
      { role: "tool", content: "2" },
      { role: "tool", content: "6" },
    ]);
    expect(out.text).toBe("The answer is 2, 6.");
  });

  it("returns the whole answer when stream is false", async () => {
    const response = await client().chat({ model: MODEL, messages: [{ role: "user", content: "hi you" }], stream: false });
    expect(response.message.content).toBe("You said: hi you");
    expect(response.done).toBe(true);
  });

  it("answers /api/tags and /api/version", async () => {
    const list = await client().list();
    expect(list.models[0]?.name).toBe("emulator:latest");
    expect((await client().version()).version).toEqual(expect.any(String));
  });

  it("surfaces FAIL_500 and FAIL_400 as ResponseErrors", async () => {
    for (const [token, status] of [
      ["FAIL_500", 500],
      ["FAIL_400", 400],
    ] as const) {
      const error = await collect([{ role: "user", content: token }]).catch((e) => e);
      expect(error.name).toBe("ResponseError");
      expect(error.status_code).toBe(status);
    }
  });

  it("surfaces FAIL_ERROR_EVENT as an error after a delta", async () => {
    const error = await collect([{ role: "user", content: "FAIL_ERROR_EVENT" }]).catch((e) => e);
    expect(error).toBeInstanceOf(Error);
    expect(error.message).toBe("Overloaded");
  });

  it("surfaces FAIL_CUT as an error", async () => {
    await expect(collect([{ role: "user", content: "FAIL_CUT" }])).rejects.toThrow();
  });

  it("rejects every failure mode without streaming too", async () => {
    const chat = (content: string) => client().chat({ model: MODEL, messages: [{ role: "user", content }], stream: false });
    await expect(chat("FAIL_500")).rejects.toMatchObject({ name: "ResponseError", status_code: 500 });
    await expect(chat("FAIL_400")).rejects.toMatchObject({ name: "ResponseError", status_code: 400 });
    await expect(chat("FAIL_ERROR_EVENT")).rejects.toMatchObject({ name: "ResponseError", status_code: 503 });
    await expect(chat("FAIL_CUT")).rejects.toThrow();
  });
});

// ---------------------------------------------------------------- Gemini

describe("Gemini generateContent / streamGenerateContent", () => {
  const calculator = {
    functionDeclarations: [
      {
        name: "calculator",
        description: "Evaluate an arithmetic expression",
        parametersJsonSchema: { type: "object", properties: { expression: { type: "string" } }, required: ["expression"] },
      },
    ],
  };
  const client = (apiKey = "test-gemini-key") => new GoogleGenAI({ apiKey, vertexai: false, httpOptions: { baseUrl: emulator.url } });
  const config = { tools: [calculator], automaticFunctionCalling: { disable: true }, automaticContinuation: false };
  const user = (text: string): Content[] => [{ role: "user", parts: [{ text }] }];
  const collect = async (contents: Content[]) => {
    const chunks: GenerateContentResponse[] = [];
    for await (const chunk of await client().models.generateContentStream({ model: MODEL, contents, config })) chunks.push(chunk);
    return chunks;
  };
  const parts = (chunks: GenerateContentResponse[]) => chunks.flatMap((c) => c.candidates?.[0]?.content?.parts ?? []);

  it("streams an echo as several SSE chunks; the last has finishReason and the whole usage", async () => {
    const chunks = await collect(user("hello there friend"));
    expect(chunks.length).toBeGreaterThanOrEqual(3);
    expect(chunks.map((c) => c.text).join("")).toBe("You said: hello there friend");
    const last = chunks.at(-1)!;
    expect(last.candidates?.[0]?.finishReason).toBe("STOP");
    expect(last.usageMetadata?.promptTokenCount).toBeGreaterThan(0);
    expect(last.usageMetadata?.candidatesTokenCount).toBe(5);
    // Earlier chunks: no finishReason, prompt tokens only.
    expect(chunks[0]?.candidates?.[0]?.finishReason).toBeUndefined();
    expect(chunks[0]?.usageMetadata?.candidatesTokenCount).toBeUndefined();
    // The SDK's path, with the model in it, and the key in x-goog-api-key.
    expect(emulator.requests[0]).toMatchObject({ provider: "gemini", path: `/v1beta/models/${MODEL}:streamGenerateContent` });
    expect(emulator.requests[0]?.headers["x-goog-api-key"]).toBe("test-gemini-key");
  });

  it("sends parallel function calls whole in one chunk, without ids, and STOP", async () => {
    const chunks = await collect(user("calc: 1+1; 2*3"));
    const calls = parts(chunks).flatMap((p) => (p.functionCall ? [p.functionCall] : []));
    expect(calls).toEqual([
      { name: "calculator", args: { expression: "1+1" } },
      { name: "calculator", args: { expression: "2*3" } },
    ]);
    expect(chunks.at(-1)?.functionCalls).toHaveLength(2);
    expect(chunks.at(-1)?.candidates?.[0]?.finishReason).toBe("STOP");
  });

  it("answers functionResponse parts with their output", async () => {
    const contents: Content[] = [
      ...user("calc: 1+1; 2*3"),
      {
        role: "model",
        parts: [{ functionCall: { name: "calculator", args: { expression: "1+1" } } }, { functionCall: { name: "calculator", args: { expression: "2*3" } } }],
      },
      {
        role: "user",
        parts: [
          { functionResponse: { name: "calculator", response: { output: "2" } } },
          { functionResponse: { name: "calculator", response: { error: "boom" } } },
        ],
      },
    ];
    expect((await collect(contents)).map((c) => c.text ?? "").join("")).toBe("The answer is 2, boom.");
  });

  it("returns the whole answer from generateContent", async () => {
    const response = await client().models.generateContent({ model: MODEL, contents: user("what is 6*7?"), config });
    expect(emulator.requests[0]?.path).toBe(`/v1beta/models/${MODEL}:generateContent`);
    expect(response.text).toBe("Let me calculate.");
    expect(response.functionCalls).toEqual([{ name: "calculator", args: { expression: "6*7" } }]);
    expect(response.usageMetadata?.candidatesTokenCount).toBeGreaterThan(0);
  });

  it("lists models at GET /v1beta/models", async () => {
    const names: string[] = [];
    for await (const m of await client().models.list()) names.push(m.name ?? "");
    expect(names).toEqual(["models/emulator"]);
  });

  it("answers errors as google.rpc.Status bodies with the HTTP status", async () => {
    const error = async (content: string, apiKey?: string) => {
      try {
        await client(apiKey).models.generateContent({ model: MODEL, contents: user(content), config });
      } catch (err) {
        return err as ApiError;
      }
      throw new Error("no error");
    };
    for (const [content, status, name] of [
      ["FAIL_500", 500, "INTERNAL"],
      ["FAIL_400", 400, "INVALID_ARGUMENT"],
      ["FAIL_401", 401, "UNAUTHENTICATED"],
      ["FAIL_429", 429, "RESOURCE_EXHAUSTED"],
    ] as const) {
      const err = await error(content);
      expect(err).toBeInstanceOf(ApiError);
      expect(err.status).toBe(status);
      expect(JSON.parse(err.message)).toMatchObject({ error: { code: status, status: name } });
    }
    // An unknown key: 400 with reason API_KEY_INVALID, as the real API answers.
    const refused = await error("hi", "key-invalid");
    expect(refused.status).toBe(400);
    expect(JSON.parse(refused.message).error.details[0]).toMatchObject({ reason: "API_KEY_INVALID" });
  });

  it("surfaces FAIL_ERROR_EVENT as an ApiError after a delta, and FAIL_CUT as an error", async () => {
    const texts: string[] = [];
    const run = async (text: string) => {
      for await (const chunk of await client().models.generateContentStream({ model: MODEL, contents: user(text), config })) texts.push(chunk.text ?? "");
    };
    await expect(run("FAIL_ERROR_EVENT")).rejects.toMatchObject({ name: "ApiError", status: 503 });
    expect(texts).toEqual(["Partial "]);
    await expect(run("FAIL_CUT")).rejects.toThrow();
  });
});

// ---------------------------------------------------------------- emulator controls

describe("emulator controls", () => {
  it("records requests and exposes them over HTTP", async () => {
    await new Anthropic({ apiKey: "test", baseURL: emulator.url, maxRetries: 0 }).messages.create({
      model: MODEL,
      max_tokens: 16,
      messages: [{ role: "user", content: "ping" }],
    });
    expect(emulator.requests).toHaveLength(1);
    expect(emulator.requests[0]).toMatchObject({
      provider: "anthropic",
      path: "/v1/messages",
      body: { model: MODEL, messages: [{ role: "user", content: "ping" }] },
    });
    // @anthropic-ai/sdk 1.x sends the api key as a Bearer token, plus anthropic-version.
    expect(emulator.requests[0]?.headers.authorization).toBe("Bearer test");
    expect(emulator.requests[0]?.headers["anthropic-version"]).toEqual(expect.any(String));
    const over = await (await fetch(`${emulator.url}/_requests`)).json();
    expect(over).toHaveLength(1);
    await fetch(`${emulator.url}/_reset`, { method: "POST" });
    expect(emulator.requests).toHaveLength(0);
  });

  it("does not record when record is false", async () => {
    const quiet = await startEmulator({ record: false });
    try {
      await new Ollama({ host: quiet.url }).chat({ model: MODEL, messages: [{ role: "user", content: "ping" }] });
      expect(quiet.requests).toHaveLength(0);
    } finally {
      await quiet.close();
    }
  });

  it("answers an invalid JSON body with the provider's 400", async () => {
    const response = await fetch(`${emulator.url}/v1/chat/completions`, { method: "POST", body: "{nope" });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { type: "invalid_request_error" } });
  });

  it("spaces chunks by x-emulator-delay-ms and SLOW_<n>MS, and stops when the client aborts", async () => {
    const client = new Anthropic({ apiKey: "test", baseURL: emulator.url, maxRetries: 0 });
    const started = Date.now();
    await client.messages
      .stream({ model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "a b" }] }, { headers: { "x-emulator-delay-ms": "20" } })
      .finalMessage();
    expect(Date.now() - started).toBeGreaterThanOrEqual(20 * 8);

    const slow = client.messages.stream({ model: MODEL, max_tokens: 16, messages: [{ role: "user", content: "SLOW_200MS" }] });
    const first = new Promise<void>((resolve) => slow.once("text", () => resolve()));
    await first;
    slow.abort();
    await expect(slow.finalMessage()).rejects.toThrow();
  });

  it("applies latencyMs before the first byte", async () => {
    const slow = await startEmulator({ latencyMs: 100 });
    try {
      const started = Date.now();
      await new Ollama({ host: slow.url }).chat({ model: MODEL, messages: [{ role: "user", content: "ping" }] });
      expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    } finally {
      await slow.close();
    }
  });

  it("runs as a CLI that prints its url and exits on SIGTERM", async () => {
    const main = fileURLToPath(new URL("./main.mjs", import.meta.url));
    const child = spawn(process.execPath, [main, "--port", "0"], { stdio: ["ignore", "pipe", "inherit"] });
    const [line] = (await once(child.stdout, "data")) as [Buffer];
    const { url } = JSON.parse(line.toString()) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const version = await (await fetch(`${url}/api/version`)).json();
    expect(version).toHaveProperty("version");
    child.kill("SIGTERM");
    const [code] = await once(child, "exit");
    expect(code).toBe(0);
  });
});
