/** Type declarations for scripts/lib/debian-package.mjs. */

/** Where and how {@link findProgram} and {@link ensureDebianPackage} look. */
export interface ProgramSearch {
  /** An environment variable holding an explicit path, checked first (e.g. "NATS_SERVER"). */
  envVar?: string;
  /** Directories searched instead of PATH, /usr/sbin, /usr/bin, /usr/local/bin. */
  dirs?: readonly string[];
}

/** The absolute path of `binary` (or the first found of several names), or undefined. */
export function findProgram(binary: string | readonly string[], options?: ProgramSearch): string | undefined;

/**
 * The absolute path of `binary`, installing Debian package `pkg` with apt-get when missing (root on Debian).
 * @throws Error naming the command to run when it is missing and cannot be installed here
 */
export function ensureDebianPackage(
  pkg: string,
  binary: string | readonly string[],
  options?: ProgramSearch & { quiet?: boolean; what?: string; tag?: string },
): string;
