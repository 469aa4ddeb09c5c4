/** Type declarations for scripts/ensure-nats.mjs (used by the vitest global set-up). */

/** The absolute path of `nats-server`, or undefined when none is found. */
export function findNatsServer(): string | undefined;

/**
 * Returns the path of `nats-server`, installing it with apt when possible.
 * @throws Error with the command to run when it is missing and cannot be installed here.
 */
export function ensureNatsServer(options?: { quiet?: boolean }): string;
