// A validated module's import and export lists, read from its bytes (what
// `WebAssembly.Module.imports`/`exports` return, without a compiled module). Start-up validates
// each plugin with `WebAssembly.validate` instead of compiling it: a compile made V8 create a
// native module (code space, jump tables) on the main thread for a module that is compiled again,
// with its memory capped, by its sandbox pool at the first call (docs/architecture.md, "Start-up").
import { decodeULEB128, listSections } from "./manifest-section.mjs";
import type { WasmExportDescriptor, WasmImportDescriptor } from "./wasm.js";

const KIND_NAMES = ["function", "table", "memory", "global", "tag"] as const;
const SECTION_IMPORT = 2;
const SECTION_EXPORT = 7;
// Names of a valid module are UTF-8 (validation checks them); a non-streaming decode keeps no state.
const NAMES = new TextDecoder("utf-8", { fatal: true });

/** The import and export descriptors of a module, in section order. */
export interface ModuleInterface {
  imports: WasmImportDescriptor[];
  exports: WasmExportDescriptor[];
}

class Cursor {
  constructor(
    private readonly bytes: Uint8Array,
    public pos: number,
    private readonly end: number,
  ) {}

  u32(): number {
    const r = decodeULEB128(this.bytes, this.pos);
    this.pos = r.next;
    if (this.pos > this.end) throw new Error("LEB128 past the end of its section");
    return r.value;
  }

  byte(): number {
    if (this.pos >= this.end) throw new Error("unexpected end of section");
    return this.bytes[this.pos++]!;
  }

  name(): string {
    const len = this.u32();
    if (this.pos + len > this.end) throw new Error("name past the end of its section");
    const s = NAMES.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }

  limits(): void {
    const flags = this.byte();
    this.u32();
    if (flags & 0x01) this.u32();
  }

  /** A value type: one byte for the MVP and reference types this V8 accepts by default. */
  valueType(): void {
    const t = this.byte();
    // 0x7f-0x7b numeric/vector, 0x70 funcref, 0x6f externref; anything else (typed references,
    // GC types) is not read here: the caller falls back to V8's reflection.
    if (!((t >= 0x7b && t <= 0x7f) || t === 0x70 || t === 0x6f)) throw new Error(`value type 0x${t.toString(16)} not read here`);
  }
}

/**
 * Reads the imports (`{ module, name, kind }`) and exports (`{ name, kind }`) of a module that
 * `WebAssembly.validate` accepted, as `WebAssembly.Module.imports`/`exports` list them.
 * @param bytes the module bytes (validated: the sections are well formed)
 * @throws Error when the module uses an encoding this reader does not cover (the caller then
 *   compiles the module and asks V8); never for a module it can read
 */
export function readModuleInterface(bytes: Uint8Array): ModuleInterface {
  const imports: WasmImportDescriptor[] = [];
  const exports: WasmExportDescriptor[] = [];
  for (const s of listSections(bytes)) {
    if (s.id !== SECTION_IMPORT && s.id !== SECTION_EXPORT) continue;
    const size = decodeULEB128(bytes, s.start + 1);
    const c = new Cursor(bytes, size.next, s.end);
    const count = c.u32();
    for (let i = 0; i < count; i++) {
      if (s.id === SECTION_IMPORT) {
        const module = c.name();
        const name = c.name();
        const kind = c.byte();
        if (kind === 0) c.u32();
        else if (kind === 1) c.valueType(), c.limits();
        else if (kind === 2) c.limits();
        else if (kind === 3) c.valueType(), c.byte();
        else if (kind === 4) c.byte(), c.u32();
        else throw new Error(`import kind ${kind} not read here`);
        imports.push({ module, name, kind: KIND_NAMES[kind]! });
      } else {
        const name = c.name();
        const kind = c.byte();
        c.u32();
        if (kind > 4) throw new Error(`export kind ${kind} not read here`);
        exports.push({ name, kind: KIND_NAMES[kind]! });
      }
    }
    if (c.pos !== s.end) throw new Error(`section ${s.id} has trailing bytes`);
  }
  return { imports, exports };
}
