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
export declare function buildPlugin(dir: string, root?: string): Promise<{ name: string; wasm: Uint8Array }>;
export declare function buildPlugins(options?: BuildPluginsOptions): Promise<BuiltPlugin[]>;
