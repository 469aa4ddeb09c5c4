// Load-time checks and rewriting of a plugin module's binary: the guest memory limit is written
// into the module itself (memory section), and imports are checked against what the sandbox
// provides, both before anything is compiled or run.
import { EXTISM_KERNEL, EXTISM_MODULE, HOST_FUNCTIONS, HOST_MODULE } from "./protocol.mjs";

/** Size of a WebAssembly page, bytes. */
export const WASM_PAGE_BYTES = 65536;

/** A module the sandbox refuses to load; `message` says why in terms an operator can act on. */
export class SandboxModuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "SandboxModuleError";
  }
}

/** One memory of a module, after rewriting. Sizes in 64 KiB pages. */
export interface MemoryLimits {
  /** Initial size, pages. */
  min: number;
  /** Maximum the module declared, pages; null if it declared none. */
  declaredMax: number | null;
  /** Maximum written into the rewritten module, pages. */
  max: number;
}

/** Result of {@link prepareModule}. */
export interface PreparedModule {
  /**
   * The module bytes with every memory's maximum capped (a new array; the input is not modified).
   * Assembled at the first read (the pool's first compile), then kept: a plugin never called
   * never holds a second copy of its module, and start-up does not build nine of them.
   */
  readonly wasm: Uint8Array;
  /** The module's own (defined) memories, in order. Usually exactly one. */
  memories: MemoryLimits[];
  /** The cap applied, pages (`floor(memoryBytes / 65536)`). */
  maxPages: number;
  /** Imports of the module, as `module.name` strings. */
  imports: string[];
}

const HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
const SECTION_IMPORT = 2;
const SECTION_MEMORY = 5;
const IMPORT_KIND_NAMES = ["function", "table", "memory", "global", "tag"];
const kernel = new Set(EXTISM_KERNEL);
// One decoder for every name: constructing a TextDecoder per import name was most of
// `prepareModule`'s time at start-up (~0.4 ms per plugin; docs/architecture.md, "Start-up").
// `decode` without `stream` keeps no state between calls.
const NAME_DECODER = new TextDecoder("utf-8", { fatal: false });

/** A cursor over module bytes; every read throws SandboxModuleError on truncation. */
class Reader {
  constructor(
    readonly bytes: Uint8Array,
    public pos: number,
    readonly end: number,
  ) {}

  byte(): number {
    if (this.pos >= this.end) throw new SandboxModuleError(`malformed module: unexpected end at byte ${this.pos}`);
    return this.bytes[this.pos++] as number;
  }

  /** Unsigned LEB128, up to 2^53 (enough for u32 and for refusing memory64 sizes sensibly). */
  uleb(): number {
    const start = this.pos;
    let value = 0;
    let scale = 1;
    for (let i = 0; ; i++) {
      if (i >= 10) throw new SandboxModuleError(`malformed module: LEB128 too long at byte ${start}`);
      const b = this.byte();
      value += (b & 0x7f) * scale;
      scale *= 128;
      if ((b & 0x80) === 0) return value;
    }
  }

  name(): string {
    const len = this.uleb();
    if (this.pos + len > this.end) throw new SandboxModuleError(`malformed module: name runs past its section at byte ${this.pos}`);
    const s = NAME_DECODER.decode(this.bytes.subarray(this.pos, this.pos + len));
    this.pos += len;
    return s;
  }
}

function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value;
  do {
    let b = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) b |= 0x80;
    out.push(b);
  } while (v !== 0);
  return out;
}

/** Skips one import descriptor's type part (after module, name, kind). */
function skipImportType(r: Reader, kind: number): void {
  switch (kind) {
    case 0: // function: type index
      r.uleb();
      return;
    case 1: // table: reftype + limits
      r.byte();
      skipLimits(r);
      return;
    case 2: // memory: limits
      skipLimits(r);
      return;
    case 3: // global: valtype + mutability
      r.byte();
      r.byte();
      return;
    case 4: // tag: attribute + type index
      r.byte();
      r.uleb();
      return;
    default:
      throw new SandboxModuleError(`malformed module: unknown import kind 0x${kind.toString(16)}`);
  }
}

function skipLimits(r: Reader): void {
  const flags = r.byte();
  r.uleb();
  if (flags & 0x01) r.uleb();
}

function pages(bytes: number): string {
  const mib = (bytes * WASM_PAGE_BYTES) / (1024 * 1024);
  return `${bytes} pages (${Number.isInteger(mib) ? mib : mib.toFixed(2)} MiB)`;
}

/**
 * Checks a plugin module and caps its memory, without compiling it.
 *
 * - Every import must be an Extism kernel function (`extism:host/env`) or an exoclaw host
 *   function (`exoclaw:host/v1`); imported memories, tables, globals and WASI are refused.
 * - Every memory the module defines gets `max = min(declared max, floor(memoryBytes / 64 KiB))`;
 *   a memory without a maximum gets the cap as its maximum.
 *
 * @param wasm the module bytes (not modified)
 * @param memoryBytes the guest linear memory limit, bytes (at least one page)
 * @throws SandboxModuleError if the bytes are not a module, a section is malformed, an import is
 *   not provided, a memory's initial size already exceeds the limit, or a memory is 64-bit,
 *   shared or uses custom page sizes.
 */
export function prepareModule(wasm: Uint8Array, memoryBytes: number): PreparedModule {
  if (wasm.length < 8 || HEADER.some((b, i) => wasm[i] !== b)) {
    throw new SandboxModuleError("not a WebAssembly module (bad magic/version header)");
  }
  const maxPages = Math.floor(memoryBytes / WASM_PAGE_BYTES);
  if (!(maxPages >= 1)) throw new SandboxModuleError(`memory limit ${memoryBytes} bytes is below one 64 KiB page`);
  const imports: string[] = [];
  const memories: MemoryLimits[] = [];
  const chunks: Uint8Array[] = [wasm.subarray(0, 8)];
  let pos = 8;
  while (pos < wasm.length) {
    const head = new Reader(wasm, pos, wasm.length);
    const id = head.byte();
    const size = head.uleb();
    const start = head.pos;
    const end = start + size;
    if (end > wasm.length) throw new SandboxModuleError(`malformed module: section ${id} at byte ${pos} runs past the end`);
    if (id === SECTION_IMPORT) {
      const r = new Reader(wasm, start, end);
      const count = r.uleb();
      for (let i = 0; i < count; i++) {
        const module = r.name();
        const name = r.name();
        const kind = r.byte();
        skipImportType(r, kind);
        imports.push(`${module}.${name}`);
        const kindName = IMPORT_KIND_NAMES[kind] ?? `kind ${kind}`;
        const provided = kind === 0 && ((module === EXTISM_MODULE && kernel.has(name)) || (module === HOST_MODULE && Object.hasOwn(HOST_FUNCTIONS, name)));
        if (!provided) {
          throw new SandboxModuleError(
            `imports ${kindName} "${module}"."${name}", which the sandbox does not provide ` +
              `(only Extism kernel functions from "${EXTISM_MODULE}" and exoclaw host functions from "${HOST_MODULE}")`,
          );
        }
      }
      chunks.push(wasm.subarray(pos, end));
    } else if (id === SECTION_MEMORY) {
      const r = new Reader(wasm, start, end);
      const count = r.uleb();
      const content: number[] = [...uleb(count)];
      for (let i = 0; i < count; i++) {
        const flags = r.byte();
        if (flags & 0x04) throw new SandboxModuleError("uses a 64-bit memory (memory64), which the sandbox does not support");
        if (flags & 0x02) throw new SandboxModuleError("defines a shared memory, which the sandbox does not support");
        if (flags & ~0x07) throw new SandboxModuleError(`memory ${i} has unsupported limits flags 0x${flags.toString(16)} (custom page sizes?)`);
        const min = r.uleb();
        const declaredMax = flags & 0x01 ? r.uleb() : null;
        if (min > maxPages) {
          throw new SandboxModuleError(
            `memory ${i} starts at ${pages(min)}, above the plugin's memory limit of ${pages(maxPages)}; raise limits.memoryBytes or rebuild the plugin with a smaller initial memory`,
          );
        }
        const max = declaredMax === null ? maxPages : Math.min(declaredMax, maxPages);
        memories.push({ min, declaredMax, max });
        content.push(0x01, ...uleb(min), ...uleb(max));
      }
      if (r.pos !== end) throw new SandboxModuleError("malformed module: trailing bytes in the memory section");
      chunks.push(Uint8Array.of(SECTION_MEMORY, ...uleb(content.length), ...content));
    } else {
      chunks.push(wasm.subarray(pos, end));
    }
    pos = end;
  }
  let out: Uint8Array | undefined;
  return {
    // Checked above; only the copy waits for its first use (the chunks are views of `wasm`).
    get wasm(): Uint8Array {
      out ??= concat(chunks);
      return out;
    },
    memories,
    maxPages,
    imports,
  };
}

function concat(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
