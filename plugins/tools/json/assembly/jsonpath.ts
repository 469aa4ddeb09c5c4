// A JSONPath subset (after RFC 9535) over SDK Values.
//
//   path      := "$" segment*
//   segment   := "." name | ".*" | ".." name | "..*" | "..[" selectors "]" | "[" selectors "]"
//   selectors := selector ("," selector)*
//   selector  := 'name' | "name" | int | [int] ":" [int] [":" [int]] | "*" | "?" filter
//   filter    := or ;  or := and ("||" and)* ;  and := unary ("&&" unary)*
//   unary     := "!" unary | "(" or ")" | operand [cmp operand]
//   operand   := "@" rel-segment* | "$" rel-segment* | number | 'string' | "string" | true | false | null
//   cmp       := "==" | "!=" | "<" | "<=" | ">" | ">="
// `?(expr)` (the classic form) and `?expr` are both accepted. A path without the leading "$"
// is read relative to the root ("a.b" = "$.a.b").

import { Value } from "@exoclaw/plugin-sdk/assembly";

/** Most nodes a query may produce (each step), so that `$..*` on a big document stays bounded. */
export const MAX_NODES: i32 = 100000;

const SEL_NAME: i32 = 0;
const SEL_INDEX: i32 = 1;
const SEL_SLICE: i32 = 2;
const SEL_WILD: i32 = 3;
const SEL_FILTER: i32 = 4;

const EX_OR: i32 = 0;
const EX_AND: i32 = 1;
const EX_NOT: i32 = 2;
const EX_CMP: i32 = 3;
const EX_EXISTS: i32 = 4;

const OP_EQ: i32 = 0;
const OP_NE: i32 = 1;
const OP_LT: i32 = 2;
const OP_LE: i32 = 3;
const OP_GT: i32 = 4;
const OP_GE: i32 = 5;

class Selector {
  kind: i32 = SEL_NAME;
  name: string = "";
  index: i64 = 0;
  hasStart: bool = false;
  start: i64 = 0;
  hasEnd: bool = false;
  end: i64 = 0;
  step: i64 = 1;
  filter: Expr | null = null;
}

class Segment {
  descendant: bool = false;
  selectors: Array<Selector> = new Array<Selector>();
}

/** An operand: a literal, or a path from `@` (current node) or `$` (root). */
class Operand {
  isPath: bool = false;
  fromRoot: bool = false;
  path: Array<Segment> = new Array<Segment>();
  literal: Value = Value.nil();
}

class Expr {
  kind: i32 = EX_EXISTS;
  op: i32 = OP_EQ;
  left: Expr | null = null;
  right: Expr | null = null;
  a: Operand | null = null;
  b: Operand | null = null;
}

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

function isNameStart(c: i32): bool {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c >= 0x80 || c == 0x24;
}

function isNameChar(c: i32): bool {
  return isNameStart(c) || isDigit(c) || c == 0x2d;
}

/** A parsed JSONPath; `error` is set (and `segments` unusable) when the text is malformed. */
export class JsonPath {
  segments: Array<Segment> = new Array<Segment>();
  error: string = "";
  private s: string;
  private i: i32 = 0;
  private depth: i32 = 0;

  constructor(text: string) {
    let t = text.trim();
    if (t.length == 0 || t.charCodeAt(0) != 0x24) {
      t = t.length > 0 && (t.charCodeAt(0) == 0x2e || t.charCodeAt(0) == 0x5b) ? "$" + t : "$." + t;
    }
    this.s = t;
    this.i = 1;
    this.segments = this.parseSegments(false);
    if (this.error.length == 0 && this.i < this.s.length) this.fail("unexpected '" + this.s.charAt(this.i) + "'");
  }

  private fail(msg: string): void {
    if (this.error.length == 0) this.error = msg + " at position " + (this.i + 1).toString() + " of " + this.s;
  }

  private peek(): i32 {
    return this.i < this.s.length ? this.s.charCodeAt(this.i) : -1;
  }

  private skipSpace(): void {
    while (this.i < this.s.length && this.s.charCodeAt(this.i) == 0x20) this.i++;
  }

  /** Segments until the end, or (inside a filter) until something that is not a segment. */
  private parseSegments(inFilter: bool): Array<Segment> {
    const out = new Array<Segment>();
    while (this.error.length == 0 && this.i < this.s.length) {
      const c = this.peek();
      if (c == 0x2e) {
        this.i++;
        const seg = new Segment();
        if (this.peek() == 0x2e) {
          this.i++;
          seg.descendant = true;
          if (this.peek() == 0x5b) {
            this.i++;
            this.parseSelectors(seg);
            out.push(seg);
            continue;
          }
        }
        if (this.peek() == 0x2a) {
          this.i++;
          const sel = new Selector();
          sel.kind = SEL_WILD;
          seg.selectors.push(sel);
        } else {
          const name = this.parseName();
          if (name.length == 0) {
            this.fail("expected a member name");
            break;
          }
          const sel = new Selector();
          sel.name = name;
          seg.selectors.push(sel);
        }
        out.push(seg);
      } else if (c == 0x5b) {
        this.i++;
        const seg = new Segment();
        this.parseSelectors(seg);
        out.push(seg);
      } else if (inFilter) {
        break;
      } else {
        this.fail("expected '.' or '['");
        break;
      }
    }
    return out;
  }

  private parseName(): string {
    const start = this.i;
    if (!isNameStart(this.peek())) return "";
    while (this.i < this.s.length && isNameChar(this.s.charCodeAt(this.i))) this.i++;
    return this.s.substring(start, this.i);
  }

  /** Selectors after "[" up to and including "]". */
  private parseSelectors(seg: Segment): void {
    for (;;) {
      this.skipSpace();
      const sel = this.parseSelector();
      if (sel == null) return;
      seg.selectors.push(sel);
      this.skipSpace();
      const c = this.peek();
      if (c == 0x5d) {
        this.i++;
        return;
      }
      if (c != 0x2c) {
        this.fail("expected ',' or ']'");
        return;
      }
      this.i++;
    }
  }

  private parseString(): string | null {
    const quote = this.peek();
    this.i++;
    const parts = new Array<string>();
    let start = this.i;
    while (this.i < this.s.length) {
      const c = this.s.charCodeAt(this.i);
      if (c == quote) {
        parts.push(this.s.substring(start, this.i));
        this.i++;
        return parts.join("");
      }
      if (c == 0x5c && this.i + 1 < this.s.length) {
        parts.push(this.s.substring(start, this.i));
        const e = this.s.charCodeAt(this.i + 1);
        parts.push(e == 0x6e ? "\n" : e == 0x74 ? "\t" : String.fromCharCode(e));
        this.i += 2;
        start = this.i;
        continue;
      }
      this.i++;
    }
    this.fail("unterminated string");
    return null;
  }

  /** An optionally signed integer, or null when there is none here. */
  private parseInt(): i64 {
    let neg = false;
    if (this.peek() == 0x2d) {
      neg = true;
      this.i++;
    }
    let v: i64 = 0;
    let n = 0;
    while (isDigit(this.peek())) {
      if (n < 17) v = v * 10 + <i64>(this.peek() - 0x30);
      this.i++;
      n++;
    }
    if (n == 0) this.fail("expected an integer");
    return neg ? -v : v;
  }

  private parseSelector(): Selector | null {
    const c = this.peek();
    const sel = new Selector();
    if (c == 0x27 || c == 0x22) {
      const name = this.parseString();
      if (name == null) return null;
      sel.name = name;
      return sel;
    }
    if (c == 0x2a) {
      this.i++;
      sel.kind = SEL_WILD;
      return sel;
    }
    if (c == 0x3f) {
      this.i++;
      this.skipSpace();
      sel.kind = SEL_FILTER;
      sel.filter = this.parseOr();
      return this.error.length == 0 ? sel : null;
    }
    if (c == 0x2d || isDigit(c) || c == 0x3a) {
      if (c != 0x3a) sel.index = this.parseInt();
      this.skipSpace();
      if (this.peek() != 0x3a) {
        sel.kind = SEL_INDEX;
        return this.error.length == 0 ? sel : null;
      }
      sel.kind = SEL_SLICE;
      if (c != 0x3a) {
        sel.hasStart = true;
        sel.start = sel.index;
      }
      this.i++; // :
      this.skipSpace();
      if (this.peek() == 0x2d || isDigit(this.peek())) {
        sel.hasEnd = true;
        sel.end = this.parseInt();
      }
      this.skipSpace();
      if (this.peek() == 0x3a) {
        this.i++;
        this.skipSpace();
        if (this.peek() == 0x2d || isDigit(this.peek())) sel.step = this.parseInt();
      }
      return this.error.length == 0 ? sel : null;
    }
    this.fail("expected a name, index, slice, '*' or filter");
    return null;
  }

  private parseOr(): Expr | null {
    if (this.depth++ > 32) {
      this.fail("filter nested too deeply");
      return null;
    }
    let left = this.parseAnd();
    while (left != null && this.error.length == 0) {
      this.skipSpace();
      if (!this.s.startsWith("||", this.i)) break;
      this.i += 2;
      const right = this.parseAnd();
      if (right == null) return null;
      const e = new Expr();
      e.kind = EX_OR;
      e.left = left;
      e.right = right;
      left = e;
    }
    this.depth--;
    return left;
  }

  private parseAnd(): Expr | null {
    let left = this.parseUnary();
    while (left != null && this.error.length == 0) {
      this.skipSpace();
      if (!this.s.startsWith("&&", this.i)) break;
      this.i += 2;
      const right = this.parseUnary();
      if (right == null) return null;
      const e = new Expr();
      e.kind = EX_AND;
      e.left = left;
      e.right = right;
      left = e;
    }
    return left;
  }

  private parseUnary(): Expr | null {
    this.skipSpace();
    const c = this.peek();
    if (c == 0x21 && !this.s.startsWith("!=", this.i)) {
      this.i++;
      const inner = this.parseUnary();
      if (inner == null) return null;
      const e = new Expr();
      e.kind = EX_NOT;
      e.left = inner;
      return e;
    }
    if (c == 0x28) {
      this.i++;
      const inner = this.parseOr();
      this.skipSpace();
      if (this.peek() != 0x29) {
        this.fail("expected ')'");
        return null;
      }
      this.i++;
      return inner;
    }
    const a = this.parseOperand();
    if (a == null) return null;
    this.skipSpace();
    const op = this.parseOp();
    const e = new Expr();
    e.a = a;
    if (op < 0) {
      if (!a.isPath) {
        this.fail("a filter needs a path like @.name");
        return null;
      }
      e.kind = EX_EXISTS;
      return e;
    }
    this.skipSpace();
    const b = this.parseOperand();
    if (b == null) return null;
    e.kind = EX_CMP;
    e.op = op;
    e.b = b;
    return e;
  }

  private parseOp(): i32 {
    const s = this.s;
    const i = this.i;
    if (s.startsWith("==", i)) { this.i += 2; return OP_EQ; }
    if (s.startsWith("!=", i)) { this.i += 2; return OP_NE; }
    if (s.startsWith("<=", i)) { this.i += 2; return OP_LE; }
    if (s.startsWith(">=", i)) { this.i += 2; return OP_GE; }
    if (s.startsWith("<", i)) { this.i += 1; return OP_LT; }
    if (s.startsWith(">", i)) { this.i += 1; return OP_GT; }
    return -1;
  }

  private parseOperand(): Operand | null {
    const c = this.peek();
    const o = new Operand();
    if (c == 0x40 || c == 0x24) {
      this.i++;
      o.isPath = true;
      o.fromRoot = c == 0x24;
      o.path = this.parseSegments(true);
      return this.error.length == 0 ? o : null;
    }
    if (c == 0x27 || c == 0x22) {
      const str = this.parseString();
      if (str == null) return null;
      o.literal = Value.str(str);
      return o;
    }
    if (c == 0x2d || isDigit(c)) {
      const start = this.i;
      if (c == 0x2d) this.i++;
      while (isDigit(this.peek()) || this.peek() == 0x2e || this.peek() == 0x65 || this.peek() == 0x45 || ((this.peek() == 0x2b || this.peek() == 0x2d) && (this.s.charCodeAt(this.i - 1) | 0x20) == 0x65)) this.i++;
      const v = parseFloat(this.s.substring(start, this.i));
      if (isNaN(v)) {
        this.fail("malformed number");
        return null;
      }
      o.literal = Value.float(v);
      return o;
    }
    if (this.s.startsWith("true", this.i)) { this.i += 4; o.literal = Value.bool(true); return o; }
    if (this.s.startsWith("false", this.i)) { this.i += 5; o.literal = Value.bool(false); return o; }
    if (this.s.startsWith("null", this.i)) { this.i += 4; o.literal = Value.nil(); return o; }
    this.fail("expected @, $, a number, a string, true, false or null");
    return null;
  }
}

/** Evaluates queries; `truncated` is set when a step hit MAX_NODES. */
export class Evaluator {
  truncated: bool = false;
  root: Value;

  constructor(root: Value) {
    this.root = root;
  }

  run(segments: Array<Segment>, start: Value): Array<Value> {
    let nodes = new Array<Value>();
    nodes.push(start);
    for (let s = 0; s < segments.length; s++) {
      const seg = segments[s];
      const next = new Array<Value>();
      for (let n = 0; n < nodes.length; n++) {
        if (seg.descendant) this.descend(nodes[n], seg, next);
        else this.apply(nodes[n], seg, next);
      }
      nodes = next;
    }
    return nodes;
  }

  private add(out: Array<Value>, v: Value): void {
    if (out.length >= MAX_NODES) {
      this.truncated = true;
      return;
    }
    out.push(v);
  }

  private descend(node: Value, seg: Segment, out: Array<Value>): void {
    if (out.length >= MAX_NODES) {
      this.truncated = true;
      return;
    }
    this.apply(node, seg, out);
    if (node.isArray() || node.isMap()) {
      for (let i = 0; i < node.length; i++) this.descend(node.at(i), seg, out);
    }
  }

  private apply(node: Value, seg: Segment, out: Array<Value>): void {
    for (let k = 0; k < seg.selectors.length; k++) {
      const sel = seg.selectors[k];
      if (sel.kind == SEL_NAME) {
        if (node.isMap()) {
          const v = node.get(sel.name);
          if (v != null) this.add(out, v);
        }
      } else if (sel.kind == SEL_WILD) {
        if (node.isArray() || node.isMap()) for (let i = 0; i < node.length; i++) this.add(out, node.at(i));
      } else if (sel.kind == SEL_INDEX) {
        if (node.isArray()) {
          const n = <i64>node.length;
          const i = sel.index < 0 ? n + sel.index : sel.index;
          if (i >= 0 && i < n) this.add(out, node.at(<i32>i));
        }
      } else if (sel.kind == SEL_SLICE) {
        if (node.isArray()) this.slice(node, sel, out);
      } else {
        if (node.isArray() || node.isMap()) {
          for (let i = 0; i < node.length; i++) {
            const child = node.at(i);
            if (this.test(<Expr>sel.filter, child)) this.add(out, child);
          }
        }
      }
    }
  }

  private slice(node: Value, sel: Selector, out: Array<Value>): void {
    const n = <i64>node.length;
    const step = sel.step;
    if (step == 0) return;
    const norm = (v: i64, len: i64): i64 => (v < 0 ? v + len : v);
    if (step > 0) {
      let lo = sel.hasStart ? norm(sel.start, n) : 0;
      let hi = sel.hasEnd ? norm(sel.end, n) : n;
      lo = lo < 0 ? 0 : lo > n ? n : lo;
      hi = hi < 0 ? 0 : hi > n ? n : hi;
      for (let i = lo; i < hi; i += step) this.add(out, node.at(<i32>i));
    } else {
      let hi = sel.hasStart ? norm(sel.start, n) : n - 1;
      let lo = sel.hasEnd ? norm(sel.end, n) : -n - 1;
      hi = hi < -1 ? -1 : hi >= n ? n - 1 : hi;
      lo = lo < -1 ? -1 : lo >= n ? n - 1 : lo;
      for (let i = hi; i > lo; i += step) this.add(out, node.at(<i32>i));
    }
  }

  private values(o: Operand, current: Value): Array<Value> {
    if (!o.isPath) {
      const one = new Array<Value>();
      one.push(o.literal);
      return one;
    }
    return this.run(o.path, o.fromRoot ? this.root : current);
  }

  private test(e: Expr, current: Value): bool {
    if (e.kind == EX_OR) return this.test(<Expr>e.left, current) || this.test(<Expr>e.right, current);
    if (e.kind == EX_AND) return this.test(<Expr>e.left, current) && this.test(<Expr>e.right, current);
    if (e.kind == EX_NOT) return !this.test(<Expr>e.left, current);
    const a = this.values(<Operand>e.a, current);
    if (e.kind == EX_EXISTS) return a.length > 0;
    const b = this.values(<Operand>e.b, current);
    // A comparison needs one value on each side ("nothing" equals only "nothing").
    if (a.length != 1 || b.length != 1) {
      const bothEmpty = a.length == 0 && b.length == 0;
      if (e.op == OP_EQ || e.op == OP_LE || e.op == OP_GE) return bothEmpty;
      if (e.op == OP_NE) return !bothEmpty;
      return false;
    }
    return compare(a[0], b[0], e.op);
  }
}

function equal(a: Value, b: Value): bool {
  if (a.isNumber() && b.isNumber()) return a.asNumber() == b.asNumber();
  if (a.isString() && b.isString()) return a.strValue == b.strValue;
  if (a.isBool() && b.isBool()) return a.boolValue == b.boolValue;
  if (a.isNil() && b.isNil()) return true;
  if ((a.isArray() && b.isArray()) || (a.isMap() && b.isMap())) {
    if (a.length != b.length) return false;
    for (let i = 0; i < a.length; i++) {
      if (a.isMap()) {
        const k = a.keyAt(i);
        const other = k.isString() ? b.get(k.strValue) : null;
        if (other == null || !equal(a.at(i), other)) return false;
      } else if (!equal(a.at(i), b.at(i))) {
        return false;
      }
    }
    return true;
  }
  return false;
}

function compare(a: Value, b: Value, op: i32): bool {
  if (op == OP_EQ) return equal(a, b);
  if (op == OP_NE) return !equal(a, b);
  let c: i32 = 0;
  if (a.isNumber() && b.isNumber()) {
    const x = a.asNumber();
    const y = b.asNumber();
    c = x < y ? -1 : x > y ? 1 : 0;
  } else if (a.isString() && b.isString()) {
    c = a.strValue < b.strValue ? -1 : a.strValue > b.strValue ? 1 : 0;
  } else {
    // Other types only compare equal to themselves: <= and >= hold for equal values.
    return (op == OP_LE || op == OP_GE) && equal(a, b);
  }
  if (op == OP_LT) return c < 0;
  if (op == OP_LE) return c <= 0;
  if (op == OP_GT) return c > 0;
  return c >= 0;
}
