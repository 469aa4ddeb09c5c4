// Typed access to the WebAssembly JS API. The project compiles against lib ES2023 + @types/node
// 20, neither of which declares the `WebAssembly` global (it lives in lib.dom), and declaring
// it ambiently would clash the day either gains it. So this module types just what the plugin
// host uses, locally.

/** A compiled module (`WebAssembly.Module`); opaque here. */
export interface WasmModule {
  readonly __wasmModule: unique symbol;
}

/** `WebAssembly.Memory`, as far as the host reads it. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

export interface WasmImportDescriptor {
  module: string;
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
}

export interface WasmExportDescriptor {
  name: string;
  kind: "function" | "table" | "memory" | "global" | "tag";
}

interface WasmApi {
  compile(bytes: Uint8Array): Promise<WasmModule>;
  /** Whether `bytes` are a valid module (the whole module validated, nothing compiled). */
  validate(bytes: Uint8Array): boolean;
  Module: {
    imports(module: WasmModule): WasmImportDescriptor[];
    exports(module: WasmModule): WasmExportDescriptor[];
    customSections(module: WasmModule, name: string): ArrayBuffer[];
  };
  Memory: abstract new (...args: never[]) => WasmMemory;
  RuntimeError: abstract new (...args: never[]) => Error;
}

/** The global `WebAssembly` object, typed by the interfaces above. */
export const wasmApi: WasmApi = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** Pages of 64 KiB in a memory. */
export function memoryPages(memory: WasmMemory): number {
  return memory.buffer.byteLength / 65536;
}
