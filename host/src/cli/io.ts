// In its own file so plugin.ts and its subcommand modules (plugin-new/-build/-test.ts) share it
// without importing each other in a cycle.

/** Where CLI subcommands write; tests substitute buffers. */
export interface CliIo {
  out(line: string): void;
  err(line: string): void;
  env: NodeJS.ProcessEnv;
}
