// Tool inputs derived from a JSON Schema, for `exoclaw plugin test`: inputs the schema accepts
// (to exercise the tool's happy path) and inputs a careless or hostile model could send anyway
// (wrong types, missing fields, huge strings, deep nesting).

/** A JSON Schema node, loosely typed (schemas come from plugin manifests). */
export type Schema = Record<string, unknown>;

/** One generated input, with a label for the report. */
export interface LabeledInput {
  label: string;
  input: unknown;
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function types(s: Schema): string[] {
  const t = s["type"];
  if (typeof t === "string") return [t];
  if (Array.isArray(t)) return t.filter((x): x is string => typeof x === "string");
  if (isObj(s["properties"]) || Array.isArray(s["required"])) return ["object"];
  if (s["items"] !== undefined) return ["array"];
  return [];
}

function num(s: Schema, key: string): number | undefined {
  const v = s[key];
  return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function formatExample(format: string): string | undefined {
  switch (format) {
    case "date-time":
      return "2024-01-02T03:04:05Z";
    case "date":
      return "2024-01-02";
    case "time":
      return "03:04:05Z";
    case "email":
      return "someone@example.com";
    case "uri":
    case "url":
      return "https://example.com/";
    case "uuid":
      return "123e4567-e89b-12d3-a456-426614174000";
    case "ipv4":
      return "192.0.2.1";
    default:
      return undefined;
  }
}

/**
 * A value the schema most likely accepts: `const`, `examples[0]`, `default`, `enum[0]`, then one
 * built from `type` and its bounds. `full` also fills optional properties. Not guaranteed valid
 * (patterns, `not`, `$ref` are not solved): callers check with a validator.
 */
export function sampleValue(schema: unknown, full = false, depth = 0): unknown {
  if (!isObj(schema) || depth > 16) return null;
  if ("const" in schema) return schema["const"];
  const examples = schema["examples"];
  if (Array.isArray(examples) && examples.length > 0) return examples[0];
  if ("default" in schema) return schema["default"];
  const e = schema["enum"];
  if (Array.isArray(e) && e.length > 0) return e[0];
  for (const key of ["oneOf", "anyOf"]) {
    const alts = schema[key];
    if (Array.isArray(alts) && alts.length > 0) return sampleValue(alts[0], full, depth + 1);
  }
  const allOf = schema["allOf"];
  if (Array.isArray(allOf) && allOf.length > 0) {
    const merged: Schema = { ...schema };
    delete merged["allOf"];
    for (const part of allOf) if (isObj(part)) Object.assign(merged, part);
    return sampleValue(merged, full, depth + 1);
  }
  const t = types(schema).find((x) => x !== "null") ?? types(schema)[0];
  switch (t) {
    case "object": {
      const props = isObj(schema["properties"]) ? schema["properties"] : {};
      const required = Array.isArray(schema["required"]) ? schema["required"].filter((r): r is string => typeof r === "string") : [];
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(props)) {
        if (full || required.includes(k)) out[k] = sampleValue(v, full, depth + 1);
      }
      for (const k of required) if (!(k in out)) out[k] = "x";
      return out;
    }
    case "array": {
      const min = num(schema, "minItems") ?? (full ? 1 : 0);
      const item = schema["items"];
      return Array.from({ length: Math.min(min, 8) }, () => sampleValue(item, full, depth + 1));
    }
    case "string": {
      const format = typeof schema["format"] === "string" ? formatExample(schema["format"]) : undefined;
      if (format !== undefined) return format;
      const min = num(schema, "minLength") ?? 1;
      const max = num(schema, "maxLength") ?? Math.max(min, 7);
      const base = "example";
      let s = base.slice(0, Math.max(min, Math.min(max, base.length)));
      while (s.length < min) s += "x";
      return s;
    }
    case "integer":
    case "number": {
      const min = num(schema, "minimum") ?? (num(schema, "exclusiveMinimum") !== undefined ? num(schema, "exclusiveMinimum")! + 1 : undefined);
      const max = num(schema, "maximum") ?? (num(schema, "exclusiveMaximum") !== undefined ? num(schema, "exclusiveMaximum")! - 1 : undefined);
      let v = min ?? (max !== undefined ? Math.min(max, 1) : 1);
      if (t === "integer") v = Math.ceil(v);
      const step = num(schema, "multipleOf");
      if (step !== undefined && step > 0) v = Math.ceil(v / step) * step;
      return v;
    }
    case "boolean":
      return true;
    case "null":
      return null;
    default:
      return "example";
  }
}

/** A value of a different JSON type than any `schema` allows (strings get numbers, ...). */
function wrongTypeFor(schema: unknown): unknown {
  const t = isObj(schema) ? types(schema) : [];
  if (!t.includes("integer") && !t.includes("number")) return 12345;
  if (!t.includes("string")) return "not the right type";
  if (!t.includes("object")) return { unexpected: true };
  if (!t.includes("array")) return [1, 2, 3];
  return true;
}

function nest(depth: number): unknown {
  let v: unknown = "bottom";
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { deeper: v };
  return v;
}

/** Size of the strings in the "huge string" inputs, characters. */
export const HUGE_STRING_CHARS = 512 * 1024;

/**
 * Inputs the schema does not accept (or stretches to its limits): not an object at all, each
 * required property missing, each property of the wrong type, null properties, an unknown
 * property, huge strings (512 Ki characters, multi-byte), deep nesting, odd numbers.
 * @param valid a valid input to mutate (from {@link sampleValue} with `full`)
 */
export function malformedInputs(schema: Schema, valid: unknown): LabeledInput[] {
  const out: LabeledInput[] = [
    { label: "input null", input: null },
    { label: "input is an array", input: [1, "two", null] },
    { label: "input is a string", input: "just a string" },
    { label: "input is a number", input: -1.5 },
    { label: "input is a boolean", input: false },
    { label: "empty object", input: {} },
  ];
  const base = isObj(valid) ? valid : {};
  const props = isObj(schema["properties"]) ? schema["properties"] : {};
  const required = Array.isArray(schema["required"]) ? schema["required"].filter((r): r is string => typeof r === "string") : [];
  for (const k of required) {
    const copy = { ...base };
    delete copy[k];
    out.push({ label: `missing required "${k}"`, input: copy });
  }
  const keys = [...new Set([...Object.keys(props), ...Object.keys(base)])];
  for (const k of keys) {
    out.push({ label: `"${k}" of the wrong type`, input: { ...base, [k]: wrongTypeFor(props[k]) } });
    out.push({ label: `"${k}" null`, input: { ...base, [k]: null } });
  }
  const huge = "\u00e9\u6f22x".repeat(Math.ceil(HUGE_STRING_CHARS / 3)).slice(0, HUGE_STRING_CHARS);
  for (const k of keys) {
    const t = isObj(props[k]) ? types(props[k] as Schema) : [];
    if (t.length === 0 || t.includes("string")) out.push({ label: `"${k}" a huge string (${HUGE_STRING_CHARS} chars)`, input: { ...base, [k]: huge } });
  }
  out.push({ label: "unknown extra property", input: { ...base, __unexpected__: { nested: [1, 2] } } });
  if (keys.length > 0) {
    const k = keys[0]!;
    out.push({ label: `"${k}" deeply nested (32 levels)`, input: { ...base, [k]: nest(32) } });
    out.push({ label: `"${k}" a huge number`, input: { ...base, [k]: 1.7976931348623157e308 } });
    out.push({ label: `"${k}" a negative integer`, input: { ...base, [k]: -9007199254740991 } });
    out.push({ label: `"${k}" an empty string`, input: { ...base, [k]: "" } });
    out.push({ label: `"${k}" control characters and emoji`, input: { ...base, [k]: "\u0000\u0007\n\t\u202e\ud83d\ude00 \"'\\<>&" } });
    out.push({ label: `"${k}" a long array`, input: { ...base, [k]: Array.from({ length: 10_000 }, (_, i) => i) } });
  }
  return out;
}
