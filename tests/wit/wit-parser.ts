// A small parser for the subset of WIT (https://component-model.bytecodealliance.org/design/wit.html)
// that wit/exoclaw.wit uses: a root `package` declaration and nested `package x:y { ... }` blocks,
// interfaces with records, enums and functions, worlds with `use`, `import` and `export`, and the
// types bool, integers, floats, char, string, list, option, result, tuple and named types. Doc
// comments (`///`) are kept. Anything else (variant, flags, resource, type aliases, `include`,
// ...) is a parse error naming the line, so using it in the WIT file makes the check fail loudly
// instead of being skipped. Hand-written rather than @bytecodealliance/jco, which would pull in a
// JavaScript engine, binaryen and two TypeScript compilers to read one 200-line file.

/** A WIT type. */
export type WitType =
  | { kind: "prim"; name: string }
  | { kind: "list"; of: WitType }
  | { kind: "option"; of: WitType }
  | { kind: "result"; ok: WitType | null; err: WitType | null }
  | { kind: "tuple"; of: WitType[] }
  | { kind: "named"; name: string };

/** A record field. */
export interface WitField {
  name: string;
  type: WitType;
  docs: string;
}

/** A record. */
export interface WitRecord {
  name: string;
  fields: WitField[];
  docs: string;
}

/** An enum. */
export interface WitEnum {
  name: string;
  cases: string[];
  docs: string;
}

/** A function (in an interface, or imported / exported by a world). */
export interface WitFunc {
  name: string;
  params: { name: string; type: WitType }[];
  result: WitType | null;
  docs: string;
}

/** An interface. */
export interface WitInterface {
  name: string;
  records: Map<string, WitRecord>;
  enums: Map<string, WitEnum>;
  funcs: Map<string, WitFunc>;
  docs: string;
}

/** A world. */
export interface WitWorld {
  name: string;
  /** `use iface.{a, b};` → [{from: "iface", names: ["a", "b"]}]. */
  uses: { from: string; names: string[] }[];
  imports: Map<string, WitFunc | { interface: string }>;
  exports: Map<string, WitFunc | { interface: string }>;
  docs: string;
}

/** A package: `namespace:name@version`. */
export interface WitPackage {
  /** e.g. `exoclaw:host` (without the version). */
  name: string;
  version: string | null;
  interfaces: Map<string, WitInterface>;
  worlds: Map<string, WitWorld>;
  docs: string;
}

/** Thrown for anything outside the supported subset, with the 1-based line. */
export class WitParseError extends Error {
  constructor(
    message: string,
    readonly line: number,
  ) {
    super(`line ${line}: ${message}`);
    this.name = "WitParseError";
  }
}

const PRIMS = new Set(["bool", "s8", "s16", "s32", "s64", "u8", "u16", "u32", "u64", "f32", "f64", "char", "string"]);

type Tok = { t: "id" | "sym" | "doc"; v: string; line: number };

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let line = 1;
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === "\n") {
      line++;
      i++;
    } else if (c === " " || c === "\t" || c === "\r") {
      i++;
    } else if (src.startsWith("///", i)) {
      const end = src.indexOf("\n", i);
      const text = src.slice(i + 3, end === -1 ? src.length : end);
      toks.push({ t: "doc", v: text.startsWith(" ") ? text.slice(1) : text, line });
      i = end === -1 ? src.length : end;
    } else if (src.startsWith("//", i)) {
      const end = src.indexOf("\n", i);
      i = end === -1 ? src.length : end;
    } else if (src.startsWith("/*", i)) {
      const end = src.indexOf("*/", i + 2);
      if (end === -1) throw new WitParseError("unterminated block comment", line);
      line += src.slice(i, end).split("\n").length - 1;
      i = end + 2;
    } else if (src.startsWith("->", i)) {
      toks.push({ t: "sym", v: "->", line });
      i += 2;
    } else if ("{}()<>,;:.=@/_*".includes(c) && !(c === "_" && /[a-z0-9-]/i.test(src[i + 1] ?? ""))) {
      toks.push({ t: "sym", v: c, line });
      i++;
    } else {
      // identifiers (kebab-case, optional % escape) and semver pieces (digits, dots handled as syms)
      const m = /^%?[a-zA-Z0-9][a-zA-Z0-9-]*/.exec(src.slice(i));
      if (m === null) throw new WitParseError(`unexpected character ${JSON.stringify(c)}`, line);
      toks.push({ t: "id", v: m[0].replace(/^%/, ""), line });
      i += m[0].length;
    }
  }
  return toks;
}

class Parser {
  private pos = 0;
  private docs: string[] = [];

  constructor(private readonly toks: Tok[]) {}

  private get line(): number {
    return this.toks[Math.min(this.pos, this.toks.length - 1)]?.line ?? 0;
  }

  private skipDocs(): void {
    while (this.toks[this.pos]?.t === "doc") this.docs.push(this.toks[this.pos++]!.v);
  }

  /** Doc comment lines collected since the last call. */
  private takeDocs(): string {
    this.skipDocs();
    const d = this.docs.join("\n");
    this.docs = [];
    return d;
  }

  private peek(): Tok | undefined {
    this.skipDocs();
    return this.toks[this.pos];
  }

  private next(): Tok {
    this.skipDocs();
    const tok = this.toks[this.pos++];
    if (tok === undefined) throw new WitParseError("unexpected end of file", this.line);
    return tok;
  }

  private expect(v: string): void {
    const tok = this.next();
    if (tok.v !== v) throw new WitParseError(`expected '${v}', found '${tok.v}'`, tok.line);
  }

  private eat(v: string): boolean {
    if (this.peek()?.v === v && this.peek()?.t === "sym") {
      this.pos++;
      return true;
    }
    return false;
  }

  private ident(): string {
    const tok = this.next();
    if (tok.t !== "id") throw new WitParseError(`expected a name, found '${tok.v}'`, tok.line);
    return tok.v;
  }

  atEnd(): boolean {
    return this.peek() === undefined;
  }

  /** `ns:name(@x.y.z)?` after the `package` keyword. */
  packageName(): { name: string; version: string | null } {
    const ns = this.ident();
    this.expect(":");
    const name = this.ident();
    let version: string | null = null;
    if (this.eat("@")) {
      let v = "";
      while (this.peek()?.v !== ";" && this.peek()?.v !== "{") v += this.next().v;
      version = v;
    }
    return { name: `${ns}:${name}`, version };
  }

  type(): WitType {
    const tok = this.next();
    if (tok.t === "sym" && tok.v === "_") throw new WitParseError("'_' is only allowed as a result's ok type", tok.line);
    if (tok.t !== "id") throw new WitParseError(`expected a type, found '${tok.v}'`, tok.line);
    switch (tok.v) {
      case "list":
      case "option": {
        this.expect("<");
        const of = this.type();
        this.expect(">");
        return { kind: tok.v, of };
      }
      case "tuple": {
        this.expect("<");
        const of = [this.type()];
        while (this.eat(",")) of.push(this.type());
        this.expect(">");
        return { kind: "tuple", of };
      }
      case "result": {
        if (!this.eat("<")) return { kind: "result", ok: null, err: null };
        let ok: WitType | null = null;
        if (!this.eat("_")) ok = this.type();
        let err: WitType | null = null;
        if (this.eat(",")) err = this.type();
        this.expect(">");
        return { kind: "result", ok, err };
      }
      case "borrow":
      case "own":
      case "future":
      case "stream":
        throw new WitParseError(`type '${tok.v}' is not supported by this checker`, tok.line);
      default:
        return PRIMS.has(tok.v) ? { kind: "prim", name: tok.v } : { kind: "named", name: tok.v };
    }
  }

  func(name: string, docs: string): WitFunc {
    this.expect("func");
    this.expect("(");
    const params: WitFunc["params"] = [];
    while (!this.eat(")")) {
      const pname = this.ident();
      this.expect(":");
      params.push({ name: pname, type: this.type() });
      if (!this.eat(",")) {
        this.expect(")");
        break;
      }
    }
    const result = this.eat("->") ? this.type() : null;
    this.expect(";");
    return { name, params, result, docs };
  }

  record(docs: string): WitRecord {
    const name = this.ident();
    this.expect("{");
    const fields: WitField[] = [];
    for (;;) {
      const fdocs = this.takeDocs();
      if (this.eat("}")) break;
      const fname = this.ident();
      this.expect(":");
      fields.push({ name: fname, type: this.type(), docs: fdocs });
      if (!this.eat(",")) {
        this.expect("}");
        break;
      }
    }
    return { name, fields, docs };
  }

  enumDecl(docs: string): WitEnum {
    const name = this.ident();
    this.expect("{");
    const cases: string[] = [];
    for (;;) {
      this.takeDocs();
      if (this.eat("}")) break;
      cases.push(this.ident());
      if (!this.eat(",")) {
        this.expect("}");
        break;
      }
    }
    return { name, cases, docs };
  }

  interfaceBody(name: string, docs: string): WitInterface {
    const iface: WitInterface = { name, records: new Map(), enums: new Map(), funcs: new Map(), docs };
    this.expect("{");
    for (;;) {
      const idocs = this.takeDocs();
      if (this.eat("}")) break;
      const tok = this.next();
      const line = tok.line;
      const add = <T extends { name: string }>(m: Map<string, T>, item: T): void => {
        if (iface.records.has(item.name) || iface.enums.has(item.name) || iface.funcs.has(item.name)) {
          throw new WitParseError(`'${item.name}' is defined twice in interface ${name}`, line);
        }
        m.set(item.name, item);
      };
      if (tok.v === "record") add(iface.records, this.record(idocs));
      else if (tok.v === "enum") add(iface.enums, this.enumDecl(idocs));
      else if (tok.t === "id" && this.peek()?.v === ":") {
        this.expect(":");
        add(iface.funcs, this.func(tok.v, idocs));
      } else throw new WitParseError(`'${tok.v}' is not supported in an interface by this checker`, line);
    }
    return iface;
  }

  worldBody(name: string, docs: string): WitWorld {
    const world: WitWorld = { name, uses: [], imports: new Map(), exports: new Map(), docs };
    this.expect("{");
    for (;;) {
      const wdocs = this.takeDocs();
      if (this.eat("}")) break;
      const tok = this.next();
      if (tok.v === "use") {
        const from = this.ident();
        this.expect(".");
        this.expect("{");
        const names = [this.ident()];
        while (this.eat(",")) names.push(this.ident());
        this.expect("}");
        this.expect(";");
        world.uses.push({ from, names });
      } else if (tok.v === "import" || tok.v === "export") {
        const target = tok.v === "import" ? world.imports : world.exports;
        const item = this.ident();
        if (this.eat(":")) target.set(item, this.func(item, wdocs));
        else {
          this.expect(";");
          target.set(item, { interface: item });
        }
      } else throw new WitParseError(`'${tok.v}' is not supported in a world by this checker`, tok.line);
    }
    return world;
  }

  /** Items of a package until `}` (nested) or the end of the file (root). */
  packageItems(pkg: WitPackage, nested: boolean, packages: WitPackage[]): void {
    for (;;) {
      const docs = this.takeDocs();
      if (nested ? this.eat("}") : this.atEnd()) return;
      const tok = this.next();
      if (tok.v === "interface") {
        const name = this.ident();
        pkg.interfaces.set(name, this.interfaceBody(name, docs));
      } else if (tok.v === "world") {
        const name = this.ident();
        pkg.worlds.set(name, this.worldBody(name, docs));
      } else if (tok.v === "package" && !nested) {
        const { name, version } = this.packageName();
        const inner: WitPackage = { name, version, interfaces: new Map(), worlds: new Map(), docs };
        this.expect("{");
        this.packageItems(inner, true, packages);
        packages.push(inner);
      } else throw new WitParseError(`'${tok.v}' is not supported at package level by this checker`, tok.line);
    }
  }

  file(): WitPackage[] {
    const packages: WitPackage[] = [];
    const docs = this.takeDocs();
    let root: WitPackage | null = null;
    if (this.peek()?.v === "package") {
      const save = this.pos;
      this.next();
      const { name, version } = this.packageName();
      if (this.eat(";")) root = { name, version, interfaces: new Map(), worlds: new Map(), docs };
      else this.pos = save; // a nested package first: handled by packageItems
    }
    const holder: WitPackage = root ?? { name: "", version: null, interfaces: new Map(), worlds: new Map(), docs };
    this.packageItems(holder, false, packages);
    if (root !== null) packages.unshift(root);
    else if (holder.interfaces.size > 0 || holder.worlds.size > 0) {
      throw new WitParseError("interfaces outside a package need a root `package` declaration", 1);
    }
    return packages;
  }
}

/**
 * Parses a WIT file of the supported subset into its packages (the root package first, then
 * nested ones in order).
 * @throws WitParseError naming the line of the first unsupported or malformed construct
 */
export function parseWit(source: string): WitPackage[] {
  return new Parser(tokenize(source)).file();
}

/** `input-schema` → `inputSchema` (record fields on the wire, TypeScript properties). */
export function camelCase(kebab: string): string {
  return kebab.replace(/-([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}

/** `clock-now` → `clock_now` (core import names of host functions). */
export function snakeCase(kebab: string): string {
  return kebab.replace(/-/g, "_");
}

/** `clock-now` → `ClockNow` (the SDK's `HostFn` enum members). */
export function pascalCase(kebab: string): string {
  const c = camelCase(kebab);
  return c.charAt(0).toUpperCase() + c.slice(1);
}

/** A readable WIT spelling of a type, for messages. */
export function formatType(t: WitType | null): string {
  if (t === null) return "_";
  switch (t.kind) {
    case "prim":
    case "named":
      return t.name;
    case "list":
    case "option":
      return `${t.kind}<${formatType(t.of)}>`;
    case "tuple":
      return `tuple<${t.of.map(formatType).join(", ")}>`;
    case "result":
      return `result<${formatType(t.ok)}, ${formatType(t.err)}>`;
  }
}
