/** The absolute path of Debian's chromium, or undefined. */
export function findChromium(): string | undefined;
/** The path of chromium, installed with apt when possible. @throws Error naming the command to run */
export function ensureChromium(options?: { quiet?: boolean }): string;
