import { describe, expect, it } from "vitest";
import { decide } from "./script.mjs";

describe("emulator script: use:<tool> <json> and force:<tool> <json>", () => {
  it("calls an offered tool with the given JSON input", () => {
    expect(decide({ tools: ["loop"], lastUserText: 'use:loop {"n": 3}', toolResults: null })).toEqual({
      kind: "message",
      parts: [{ type: "tool_call", name: "loop", input: { n: 3 } }],
      stop: "tool_use",
    });
    expect(decide({ tools: ["trap"], lastUserText: "use:trap", toolResults: null })).toMatchObject({ parts: [{ name: "trap", input: {} }] });
  });

  it("falls back to an echo for tools not offered or bad JSON, and answers tool results", () => {
    expect(decide({ tools: [], lastUserText: "use:loop", toolResults: null })).toMatchObject({ stop: "end_turn" });
    expect(decide({ tools: ["loop"], lastUserText: "use:loop {nope", toolResults: null })).toMatchObject({ stop: "end_turn" });
    expect(decide({ tools: ["loop"], lastUserText: "use:loop", toolResults: ["boom"] })).toMatchObject({ stop: "end_turn" });
  });

  it("force: calls the named tool even when the request does not offer it (a model ignoring its tool list)", () => {
    expect(decide({ tools: [], lastUserText: 'force:calculator {"expression": "6*7"}', toolResults: null })).toEqual({
      kind: "message",
      parts: [{ type: "tool_call", name: "calculator", input: { expression: "6*7" } }],
      stop: "tool_use",
    });
    expect(decide({ tools: ["time"], lastUserText: "force:memory", toolResults: null })).toMatchObject({
      parts: [{ name: "memory", input: {} }],
      stop: "tool_use",
    });
    // Bad JSON still falls back to an echo; a tool result is answered, so the turn ends.
    expect(decide({ tools: [], lastUserText: "force:calculator {nope", toolResults: null })).toMatchObject({ stop: "end_turn" });
    expect(decide({ tools: [], lastUserText: "force:calculator", toolResults: ["refused"] })).toEqual({
      kind: "message",
      parts: [{ type: "text", chunks: expect.any(Array) }],
      stop: "end_turn",
    });
  });
});

describe("emulator script: stalls", () => {
  it("STALL_AFTER_HEADERS and STALL_BEFORE_HEADERS script a hung provider", () => {
    expect(decide({ tools: [], lastUserText: "x STALL_AFTER_HEADERS", toolResults: null })).toMatchObject({ kind: "failure", mode: "stall_after_headers" });
    expect(decide({ tools: [], lastUserText: "STALL_BEFORE_HEADERS y", toolResults: null })).toMatchObject({ kind: "failure", mode: "stall_before_headers" });
  });
});
