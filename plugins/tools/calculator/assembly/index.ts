// Calculator tool: a recursive-descent evaluator over f64.
//
// Grammar (lowest to highest precedence):
//   expr    := term (("+" | "-") term)*
//   term    := unary (("*" | "/") unary)*
//   unary   := ("-" | "+") unary | power
//   power   := primary ("^" unary)?        right-associative; -2^2 = -4 as in maths
//   primary := number | "(" expr ")"
// Positions in messages are 1-based and count Unicode code points, so they match what a
// person (or a model) sees in the expression.

import { formatNumber, parseNumber, runTool, ToolResult, Value } from "@exoclaw/plugin-sdk/assembly";

const TOOL_NAME = "calculator";
const MAX_LENGTH = 10000;
// Recursion budget; deeper input is refused instead of overflowing the Wasm stack.
const MAX_DEPTH = 200;
const END: i32 = -1;

function isDigit(c: i32): bool {
  return c >= 0x30 && c <= 0x39;
}

function isSpace(c: i32): bool {
  return c == 0x20 || c == 0x09 || c == 0x0a || c == 0x0d;
}

/** Maps the Unicode spellings models like to use onto the ASCII operators. */
function normalizeOp(c: i32): i32 {
  if (c == 0x2212) return 0x2d; // − minus sign
  if (c == 0xd7) return 0x2a; // × multiplication sign
  if (c == 0xf7) return 0x2f; // ÷ division sign
  return c;
}

function showChar(c: i32): string {
  if (c < 0x20 || c == 0x7f) {
    return "U+" + c.toString(16).toUpperCase().padStart(4, "0");
  }
  return "'" + String.fromCodePoint(c) + "'";
}

class Parser {
  cps: Array<i32>;
  i: i32 = 0;
  depth: i32 = 0;
  failed: bool = false;
  error: string = "";

  constructor(cps: Array<i32>) {
    this.cps = cps;
  }

  fail(msg: string): f64 {
    if (!this.failed) {
      this.failed = true;
      this.error = msg;
    }
    return 0;
  }

  /** Next non-space code point (normalized), without consuming it; END at the end. */
  peek(): i32 {
    while (this.i < this.cps.length && isSpace(this.cps[this.i])) this.i++;
    return this.i < this.cps.length ? normalizeOp(this.cps[this.i]) : END;
  }

  /** 1-based position of the code point `peek` just looked at. */
  pos(): i32 {
    return this.i + 1;
  }

  parseExpr(): f64 {
    let left = this.parseTerm();
    while (!this.failed) {
      const c = this.peek();
      if (c != 0x2b && c != 0x2d) break;
      const opPos = this.pos();
      this.i++;
      const right = this.parseOperand(c, opPos, false);
      if (this.failed) break;
      left = c == 0x2b ? left + right : left - right;
    }
    return left;
  }

  parseTerm(): f64 {
    let left = this.parseUnary();
    while (!this.failed) {
      const c = this.peek();
      if (c != 0x2a && c != 0x2f) break;
      const opPos = this.pos();
      this.i++;
      const right = this.parseOperand(c, opPos, true);
      if (this.failed) break;
      if (c == 0x2a) {
        left = left * right;
      } else {
        if (right == 0) return this.fail("division by zero at position " + opPos.toString());
        left = left / right;
      }
    }
    return left;
  }

  /** The operand right after binary operator `op`; names the operator if it is missing. */
  parseOperand(op: i32, opPos: i32, unary: bool): f64 {
    const c = this.peek();
    if (c == END || c == 0x29 || c == 0x2a || c == 0x2f || c == 0x5e) {
      return this.fail(
        "missing operand after '" + String.fromCodePoint(op) + "' at position " + opPos.toString(),
      );
    }
    return unary ? this.parseUnary() : this.parseTerm();
  }

  parseUnary(): f64 {
    if (++this.depth > MAX_DEPTH) {
      return this.fail("expression is nested too deeply at position " + this.pos().toString());
    }
    let v: f64;
    const c = this.peek();
    if (c == 0x2d || c == 0x2b) {
      const opPos = this.pos();
      this.i++;
      const operand = this.parseOperand(c, opPos, true);
      v = c == 0x2d ? -operand : operand;
    } else {
      v = this.parsePower();
    }
    this.depth--;
    return v;
  }

  parsePower(): f64 {
    const base = this.parsePrimary();
    if (this.failed) return 0;
    if (this.peek() != 0x5e) return base;
    const opPos = this.pos();
    this.i++;
    const exp = this.parseOperand(0x5e, opPos, true);
    if (this.failed) return 0;
    if (base == 0 && exp < 0) {
      return this.fail("division by zero at position " + opPos.toString() + " (0 raised to a negative power)");
    }
    const r = Math.pow(base, exp);
    if (isNaN(r)) {
      return this.fail("result of '^' at position " + opPos.toString() + " is not a real number");
    }
    return r;
  }

  parsePrimary(): f64 {
    const c = this.peek();
    const p = this.pos();
    if (c == END) return this.fail("missing operand at end of expression");
    if (isDigit(c) || c == 0x2e) return this.readNumber();
    if (c == 0x28) {
      this.i++;
      if (this.peek() == 0x29) return this.fail("empty parentheses at position " + p.toString());
      if (++this.depth > MAX_DEPTH) {
        return this.fail("expression is nested too deeply at position " + p.toString());
      }
      const v = this.parseExpr();
      this.depth--;
      if (this.failed) return 0;
      if (this.peek() != 0x29) {
        return this.fail("unbalanced parentheses: '(' at position " + p.toString() + " is never closed");
      }
      this.i++;
      return v;
    }
    if (c == 0x29) return this.fail("unbalanced parentheses: unexpected ')' at position " + p.toString());
    if (c == 0x2a || c == 0x2f || c == 0x5e) {
      return this.fail("missing operand before '" + String.fromCodePoint(c) + "' at position " + p.toString());
    }
    return this.fail("unexpected character " + showChar(this.cps[this.i]) + " at position " + p.toString());
  }

  readNumber(): f64 {
    const start = this.i;
    let dots = 0;
    let digits = 0;
    while (this.i < this.cps.length) {
      const c = this.cps[this.i];
      if (isDigit(c)) digits++;
      else if (c == 0x2e) dots++;
      else break;
      this.i++;
    }
    // Exponent only when a digit follows, so "2e" reports the 'e' as an unexpected character.
    if (this.i < this.cps.length && (this.cps[this.i] == 0x65 || this.cps[this.i] == 0x45)) {
      let j = this.i + 1;
      if (j < this.cps.length && (this.cps[j] == 0x2b || this.cps[j] == 0x2d)) j++;
      if (j < this.cps.length && isDigit(this.cps[j])) {
        this.i = j;
        while (this.i < this.cps.length && isDigit(this.cps[this.i])) this.i++;
      }
    }
    let text = "";
    for (let k = start; k < this.i; k++) text += String.fromCharCode(this.cps[k]);
    if (dots > 1 || digits == 0) {
      return this.fail("malformed number '" + text + "' at position " + (start + 1).toString());
    }
    return parseNumber(text);
  }
}

function toCodePoints(s: string): Array<i32> {
  const out = new Array<i32>();
  let i = 0;
  while (i < s.length) {
    const cp = s.codePointAt(i);
    out.push(cp);
    i += cp > 0xffff ? 2 : 1;
  }
  return out;
}

/** Evaluates `expr`; the result is the formatted number or a positioned error. */
function evaluate(expr: string): ToolResult {
  const cps = toCodePoints(expr);
  if (cps.length > MAX_LENGTH) {
    return ToolResult.error("expression is too long (" + cps.length.toString() + " characters, max " + MAX_LENGTH.toString() + ")");
  }
  const p = new Parser(cps);
  if (p.peek() == END) return ToolResult.error("empty expression");
  const v = p.parseExpr();
  if (!p.failed && p.peek() != END) {
    const c = p.peek();
    const pos = p.pos();
    if (c == 0x29) {
      p.fail("unbalanced parentheses: unexpected ')' at position " + pos.toString());
    } else if (isDigit(c) || c == 0x2e || c == 0x28) {
      p.fail("missing operator before '" + String.fromCodePoint(c) + "' at position " + pos.toString());
    } else {
      p.fail("unexpected character " + showChar(cps[p.i]) + " at position " + pos.toString());
    }
  }
  if (p.failed) return ToolResult.error(p.error);
  if (isNaN(v)) return ToolResult.error("result is not a real number");
  if (!isFinite(v)) return ToolResult.error("result is too large to represent (overflow)");
  return ToolResult.ok(formatNumber(v));
}

function kindName(v: Value): string {
  if (v.isNil()) return "null";
  if (v.isBool()) return "boolean";
  if (v.isNumber()) return "number";
  if (v.isString()) return "string";
  if (v.isArray()) return "array";
  if (v.isMap()) return "object";
  return "binary";
}

function handle(name: string, input: Value): ToolResult {
  if (name != TOOL_NAME) {
    return ToolResult.error("unknown tool '" + name + "' (this plugin provides: " + TOOL_NAME + ")");
  }
  if (!input.isMap()) {
    return ToolResult.error("invalid input: expected an object, got " + kindName(input));
  }
  for (let i = 0; i < input.length; i++) {
    const k = input.keyAt(i);
    if (!k.isString() || k.strValue != "expression") {
      const shown = k.isString() ? k.strValue : kindName(k);
      return ToolResult.error("invalid input: unexpected field '" + shown + "' (only 'expression' is allowed)");
    }
  }
  const expr = input.get("expression");
  if (expr == null) return ToolResult.error("invalid input: missing required field 'expression'");
  if (!expr.isString()) {
    return ToolResult.error("invalid input: 'expression' must be a string, got " + kindName(expr));
  }
  return evaluate(expr.strValue);
}

/** Extism export: one tool call per invocation (see @exoclaw/plugin-sdk `runTool`). */
export function call(): i32 {
  return runTool(handle);
}
