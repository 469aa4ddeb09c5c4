// Type declarations for manifest-section.mjs (kept by hand; the implementation is plain JS so
// that the build script runs without a TypeScript step).

export declare const MANIFEST_SECTION: "exoclaw.manifest";
export declare const ABI_VERSION: 1;

export interface WasmSection {
  id: number;
  start: number;
  end: number;
  name?: string;
  payloadStart?: number;
}

export declare function encodeULEB128(value: number): Uint8Array;
export declare function decodeULEB128(bytes: Uint8Array, offset: number): { value: number; next: number };
export declare function assertWasmHeader(wasm: Uint8Array): void;
export declare function listSections(wasm: Uint8Array): WasmSection[];
export declare function readCustomSections(wasm: Uint8Array, name: string): Uint8Array[];
export declare function removeCustomSections(wasm: Uint8Array, name: string): Uint8Array;
export declare function appendCustomSection(wasm: Uint8Array, name: string, payload: Uint8Array | string): Uint8Array;
export declare function validateManifest(manifest: unknown): string[];
export declare function embedManifest(wasm: Uint8Array, manifest: object): Uint8Array;
export declare function extractManifest(wasm: Uint8Array): Record<string, unknown>;
export declare function validateCapabilities(capabilities: unknown): string[];
export declare function capabilitiesFromToml(capabilities: unknown): unknown;
export declare function manifestFromToml(toml: Record<string, unknown>): Record<string, unknown>;
