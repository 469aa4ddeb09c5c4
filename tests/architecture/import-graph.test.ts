/**
 * The module boundaries of host/src (docs/architecture.md, "Folders and the import order"), read
 * from the import graph with the TypeScript compiler's own pre-processor (`ts.preProcessFile`:
 * `import`, `import type`, `export ... from`, `import()` and `typeof import()` alike), so no
 * dependency is needed. Three rules:
 *
 * 1. No cycle between files (type-only imports count: a type cycle is still two modules that
 *    each need the other's definitions).
 * 2. A folder imports only folders below it in {@link LAYERS} (type-only imports count too).
 * 3. Across folders, only a folder's `index.ts` or an entry listed in {@link EXPLICIT_ENTRIES} is
 *    imported; and nothing outside host/src but packages (see {@link OUTSIDE_HOST}).
 */
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const HOST_SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../host/src");

/**
 * The import order, lowest first: a folder may import the folders of lower ranks only. `(root)`
 * stands for the files directly in host/src (`paths.ts`, `version.ts`), each its own entry.
 * Must agree with the table in docs/architecture.md.
 */
export const LAYERS: readonly (readonly string[])[] = [
  ["util", "(root)"],
  ["log"],
  ["telemetry"],
  ["protocol"],
  ["router"],
  ["store"],
  ["plugins"],
  ["config"],
  ["mcp"],
  ["agent"],
  ["bus"],
  ["channels"],
  ["automation"],
  ["gateway"],
  ["cli"],
];

/**
 * Files other than `index.ts` that other folders may import, and why (each is documented in
 * docs/architecture.md). The `.mjs` ones are plain JavaScript loaded also by the sandbox worker
 * (plugins/sandbox/sandbox-worker.mjs), which runs without a TypeScript step and so cannot go
 * through an `index.ts`.
 */
export const EXPLICIT_ENTRIES: Readonly<Record<string, string>> = {
  "protocol/msgpack.mjs": "the one msgpackr configuration; plain JS for the sandbox worker",
  "util/error-message.mjs": "errorMessage; plain JS for the sandbox worker",
  "plugins/internal.ts": "the sandbox and the wasm API, for `exoclaw plugin test` (host-internal wiring, not the plugin host's API)",
  "bus/nats/index.ts":
    "the NATS back end's KV cells, for the channels' shared pairing and rate windows (channels/pairing-kv.ts, rate-kv.ts; loaded lazily: the NATS client costs ~65 ms to import)",
};

/** Files outside host/src that host code may import (by path from the package root), and why. */
export const OUTSIDE_HOST: Readonly<Record<string, string>> = {
  "scripts/build-plugins.mjs": "`exoclaw plugin build` runs the plugin build script (a type import; loaded at run time from the package root)",
};

/** One import: from which file (relative to host/src) to which specifier, resolved. */
export interface ImportEdge {
  from: string;
  /** Relative to host/src (`../` when it leaves it). */
  to: string;
  line: number;
}

/** A broken rule, worded for the test's failure message. */
export type Violation = string;

/** The folder of a file relative to host/src: its first path segment, or `(root)`. */
function folderOf(file: string): string {
  const parts = file.split("/");
  return parts.length === 1 ? "(root)" : parts[0]!;
}

function rankOf(folder: string): number {
  return LAYERS.findIndex((group) => group.includes(folder));
}

/**
 * Reads the relative imports of each source. `exists` decides whether `x.js` means `x.ts`.
 * @param sources file (relative to host/src, `/`-separated) -> its text
 */
export function readEdges(sources: ReadonlyMap<string, string>, exists: (file: string) => boolean): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const [from, text] of sources) {
    const info = ts.preProcessFile(text, true, true);
    for (const ref of info.importedFiles) {
      if (!ref.fileName.startsWith(".")) continue; // a package (node:, npm)
      let to = path.posix.normalize(path.posix.join(path.posix.dirname(from), ref.fileName));
      if (to.endsWith(".js") && exists(to.slice(0, -3) + ".ts")) to = to.slice(0, -3) + ".ts";
      const line = text.slice(0, ref.pos).split("\n").length;
      edges.push({ from, to, line });
    }
  }
  return edges;
}

/** Checks the three rules over `edges`; returns every violation (empty when the graph holds). */
export function checkGraph(edges: readonly ImportEdge[]): Violation[] {
  const violations: Violation[] = [];
  for (const e of edges) {
    const where = `${e.from}:${e.line} imports ${e.to}`;
    if (e.to.startsWith("../")) {
      const target = path.posix.normalize(path.posix.join("host/src", e.to));
      if (!(target in OUTSIDE_HOST)) violations.push(`${where}: outside host/src (host code imports only host/src and packages)`);
      continue;
    }
    const from = folderOf(e.from);
    const to = folderOf(e.to);
    if (from === to) continue;
    const fromRank = rankOf(from);
    const toRank = rankOf(to);
    if (fromRank < 0) violations.push(`${where}: folder ${from} is not in the import order (LAYERS)`);
    else if (toRank < 0) violations.push(`${where}: folder ${to} is not in the import order (LAYERS)`);
    else if (toRank >= fromRank)
      violations.push(`${where}: upward import (${from} may import only folders below it: ${LAYERS.slice(0, fromRank).flat().join(", ")})`);
    const entry = to === "(root)" || e.to === `${to}/index.ts` || e.to in EXPLICIT_ENTRIES;
    if (!entry) violations.push(`${where}: deep import (import ${to}/index.ts or an entry in EXPLICIT_ENTRIES)`);
  }
  for (const cycle of findCycles(edges)) violations.push(`import cycle: ${cycle.join(" -> ")} -> ${cycle[0]}`);
  return violations;
}

/** Every cycle of files, one per strongly connected component (Tarjan), as a path through it. */
export function findCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, string[]>();
  for (const e of edges) {
    if (e.to.startsWith("../")) continue;
    const list = next.get(e.from) ?? [];
    list.push(e.to);
    next.set(e.from, list);
  }
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  let counter = 0;
  const visit = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      const selfLoop = (next.get(v) ?? []).includes(v);
      if (component.length > 1 || selfLoop) cycles.push(component.reverse());
    }
  };
  for (const v of [...next.keys()].sort()) if (!index.has(v)) visit(v);
  return cycles;
}

/** The sources of host/src: `.ts`, `.mts` and `.mjs` files (declaration files excluded). */
function readHostSources(): Map<string, string> {
  const sources = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (/\.(ts|mts|mjs)$/.test(entry.name) && !/\.d\.(ts|mts)$/.test(entry.name)) {
        sources.set(path.relative(HOST_SRC, full).split(path.sep).join("/"), readFileSync(full, "utf8"));
      }
    }
  };
  walk(HOST_SRC);
  return sources;
}

const existsInHost = (file: string): boolean => existsSync(path.join(HOST_SRC, file));

describe("host/src import graph", () => {
  it("has no cycle, no upward import and no deep cross-folder import", () => {
    const sources = readHostSources();
    const edges = readEdges(sources, existsInHost);
    expect(edges.length).toBeGreaterThan(100); // the reader found the imports at all
    expect(checkGraph(edges)).toEqual([]);
  });

  it("lists every folder of host/src in the import order", () => {
    const folders = readdirSync(HOST_SRC, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name);
    expect(folders.filter((f) => rankOf(f) < 0)).toEqual([]);
  });

  it("names explicit entries that exist", () => {
    expect(Object.keys(EXPLICIT_ENTRIES).filter((f) => !existsInHost(f))).toEqual([]);
  });

  // The checker itself, on small made-up trees: each rule must catch what it is there for.
  const check = (files: Record<string, string>): Violation[] => {
    const sources = new Map(Object.entries(files));
    return checkGraph(readEdges(sources, (f) => sources.has(f)));
  };

  it("catches a cycle, also one made of type-only imports", () => {
    const v = check({
      "agent/a.ts": `import type { B } from "./b.js";\nexport type A = B;`,
      "agent/b.ts": `import { a } from "./a.js";\nexport const b = a;`,
    });
    expect(v).toEqual(["import cycle: agent/a.ts -> agent/b.ts -> agent/a.ts"]);
  });

  it("catches an upward import, also a type-only or dynamic one", () => {
    const v = check({
      "store/a.ts": `import type { X } from "../agent/index.js";\nexport const f = () => import("../bus/index.js");`,
      "agent/index.ts": "export type X = 1;",
      "bus/index.ts": "export {};",
    });
    expect(v).toEqual([
      "store/a.ts:1 imports agent/index.ts: upward import (store may import only folders below it: util, (root), log, telemetry, protocol, router)",
      "store/a.ts:2 imports bus/index.ts: upward import (store may import only folders below it: util, (root), log, telemetry, protocol, router)",
    ]);
  });

  it("catches a deep import, an export-from included, and an import from outside host/src", () => {
    const v = check({
      "gateway/a.ts": `export { Thing } from "../agent/thing.js";\nimport { x } from "../../../scripts/lib/x.mjs";`,
      "agent/thing.ts": "export class Thing {}",
    });
    expect(v).toEqual([
      "gateway/a.ts:1 imports agent/thing.ts: deep import (import agent/index.ts or an entry in EXPLICIT_ENTRIES)",
      "gateway/a.ts:2 imports ../../scripts/lib/x.mjs: outside host/src (host code imports only host/src and packages)",
    ]);
  });
});
