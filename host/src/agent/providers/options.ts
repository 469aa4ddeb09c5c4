import type { Logger } from "pino";

/** What every provider adapter takes besides its endpoint. */
export interface ProviderOptions {
  /**
   * Failures are logged here: one warn line per failure with the request id the client's error
   * message names, and at debug the provider's error text with secrets scrubbed. Default: none.
   */
  logger?: Pick<Logger, "warn" | "debug" | "isLevelEnabled">;
}
