// Type declarations for build-plugins.mjs (kept by hand; see that file for behaviour).

export interface BuildFailure {
  name: string;
  dir: string;
  message: string;
}

export declare class PluginBuildError extends Error {
  readonly failures: BuildFailure[];
  constructor(failures: BuildFailure[]);
}

export interface BuiltPlugin {
  name: string;
  dir: string;
  path: string;
  bytes: number;
  ms: number;
}

export interface BuildPluginsOptions {
  root?: string;
  outDir?: string;
  only?: string[];
  log?: (line: string) => void;
  /** Build the test fixtures (plugins/fixtures/*) instead; `outDir` then defaults to build/fixtures. */
  fixtures?: boolean;
}

export declare function findPluginDirs(root?: string, groups?: string[]): Promise<string[]>;
export declare function manifestFromToml(toml: Record<string, unknown>): Record<string, unknown>;
/** One compiler diagnostic, parsed from the AssemblyScript compiler's report. */
export interface Diagnostic {
  severity: "error" | "warning" | "info";
  /** TS/AS diagnostic code (e.g. 2304), null if unknown. */
  code: number | null;
  message: string;
  /** Path as the compiler saw it, relative to the build root (`~lib/...` for library files). */
  file: string | null;
  /** 1-based. */
  line: number | null;
  /** 1-based. */
  column: number | null;
  /** The compiler's source excerpt (may be empty). */
  excerpt: string;
}

/** Raised by `buildPlugin` when the compiler reports errors. */
export declare class PluginCompileError extends Error {
  readonly diagnostics: Diagnostic[];
  constructor(diagnostics: Diagnostic[], text: string);
}

/** Options of `buildPlugin`. */
export interface BuildPluginOptions {
  /** The `assemblyscript/asc` module to compile with (default: this package's). */
  asc?: unknown;
  /** Extra package directories searched after `node_modules` (asc `--path`). */
  paths?: string[];
}

/** What `buildPlugin` produces. */
export interface BuiltModule {
  name: string;
  /** The module with its manifest embedded. */
  wasm: Uint8Array;
  manifest: Record<string, unknown>;
  /** Non-error diagnostics (warnings) of the compiler. */
  warnings: Diagnostic[];
}

export declare function parseDiagnostics(report: string): Diagnostic[];
export declare function formatDiagnostics(diagnostics: Diagnostic[], showPath?: (file: string) => string): string;
export declare function buildPlugin(dir: string, root?: string, options?: BuildPluginOptions): Promise<BuiltModule>;
export declare function buildPlugins(options?: BuildPluginsOptions): Promise<BuiltPlugin[]>;
