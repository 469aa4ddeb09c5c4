// json_query through the real sandbox: the JSONPath subset, documents as values and as text,
// errors for malformed paths and documents, and the output cap.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ok, toolClient, type ToolClient } from "./support.js";

let c: ToolClient;
const store = {
  store: {
    book: [
      { category: "reference", author: "Nigel Rees", title: "Sayings of the Century", price: 8.95 },
      { category: "fiction", author: "Evelyn Waugh", title: "Sword of Honour", price: 12.99 },
      { category: "fiction", author: "Herman Melville", title: "Moby Dick", isbn: "0-553-21311-3", price: 8.99 },
      { category: "fiction", author: "J. R. R. Tolkien", title: "The Lord of the Rings", isbn: "0-395-19395-8", price: 22.99 },
    ],
    bicycle: { color: "red", price: 399 },
  },
};
const q = async (path: string, document: unknown = store) => c.call("json_query", { document, path });
const values = async (path: string, document: unknown = store): Promise<unknown[]> => {
  const r = await q(path, document);
  expect(r.isError, r.content).toBe(false);
  return JSON.parse(r.content) as unknown[];
};

beforeAll(async () => {
  c = await toolClient("json");
});
afterAll(async () => {
  await c?.close();
});

describe("json_query", () => {
  it("selects members, indexes, wildcards and descendants", async () => {
    expect(await values("$.store.book[0].title")).toEqual(["Sayings of the Century"]);
    expect(await values("$.store.book[-1].author")).toEqual(["J. R. R. Tolkien"]);
    expect(await values("$.store.book[*].author")).toHaveLength(4);
    expect(await values("$..author")).toEqual(["Nigel Rees", "Evelyn Waugh", "Herman Melville", "J. R. R. Tolkien"]);
    expect(await values("$.store.*")).toHaveLength(2);
    expect(await values("$..price")).toEqual([8.95, 12.99, 8.99, 22.99, 399]);
    expect(await values("$['store']['bicycle'][\"color\"]")).toEqual(["red"]);
    expect(await values("store.bicycle.color")).toEqual(["red"]); // no leading $
  });

  it("slices and unions", async () => {
    expect(await values("$.store.book[0:2].title")).toEqual(["Sayings of the Century", "Sword of Honour"]);
    expect(await values("$.store.book[-2:].price")).toEqual([8.99, 22.99]);
    expect(await values("$.store.book[::-1].price")).toEqual([22.99, 8.99, 12.99, 8.95]);
    expect(await values("$.store.book[0,2].price")).toEqual([8.95, 8.99]);
    expect(await values("$.store.book[9]")).toEqual([]);
  });

  it("filters with comparisons, existence, && || ! and root references", async () => {
    expect(await values("$.store.book[?(@.price < 10)].title")).toEqual(["Sayings of the Century", "Moby Dick"]);
    expect(await values("$..book[?(@.isbn)].title")).toEqual(["Moby Dick", "The Lord of the Rings"]);
    expect(await values("$..book[?(!@.isbn)].price")).toEqual([8.95, 12.99]);
    expect(await values("$..book[?(@.category == 'fiction' && @.price > 10)].title")).toEqual(["Sword of Honour", "The Lord of the Rings"]);
    expect(await values('$..book[?(@.price > 20 || @.author == "Nigel Rees")].price')).toEqual([8.95, 22.99]);
    expect(await values("$..book[?@.price >= 12.99].price")).toEqual([12.99, 22.99]);
    expect(await values("$..book[?(@.price > $.store.book[0].price)].price")).toEqual([12.99, 8.99, 22.99]);
  });

  it("reads documents given as JSON text, and returns JSON text", async () => {
    expect(await values("$.a[1].b", JSON.stringify({ a: [1, { b: 'x"y\n' }] }))).toEqual(['x"y\n']);
    expect(await q("$", { n: 1, f: 1.5, t: true, z: null, s: "é😀" })).toEqual(ok('[{"n":1,"f":1.5,"t":true,"z":null,"s":"é😀"}]'));
    // A plain string is a JSON string value.
    expect(await values("$", "just text")).toEqual(["just text"]);
  });

  it("explains malformed paths and documents", async () => {
    const bad = await q("$.store[");
    expect(bad.isError).toBe(true);
    expect(bad.content).toMatch(/^invalid JSONPath: .* at position 9/);
    const doc = await q("$", '{"a": [1, 2,, 3]}');
    expect(doc).toEqual({ content: "'document' is not valid JSON: unexpected character ',' at line 1, column 13", isError: true });
    expect((await c.call("json_query", { path: "$" })).isError).toBe(true);
    expect((await c.call("json_query", { document: {} })).isError).toBe(true);
    expect((await q("$", "[".repeat(100) + "]".repeat(100))).content).toMatch(/nesting deeper than 64/);
  });

  // Also a regression test for the build: with -Os, Array<string>#join over thousands of parts
  // ran plugins out of memory (scripts/build-plugins.mjs).
  it("caps large results and says so", async () => {
    const big = Array.from({ length: 5000 }, (_, i) => ({ i, text: "x".repeat(40) }));
    const r = await q("$[*]", big);
    expect(r.isError).toBe(false);
    expect(r.content).toMatch(/^5000 matches; the first \d+ are shown \(results are capped at 100000 characters; narrow the path\):\n\[/);
    expect(r.content.length).toBeLessThan(101_000);
  });
});
