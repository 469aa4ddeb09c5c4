import { ok, error, type Finding } from "./types.js";

/** The oldest Node.js exoclaw supports (package.json `engines`: uWebSockets.js and `fs.statfs` need 20.19+). */
export const MIN_NODE = [20, 19, 0] as const;

/**
 * Checks the running Node.js version against {@link MIN_NODE} (pure).
 * @param version `process.versions.node`, e.g. `20.19.1`
 */
export function checkNode(version: string): Finding {
  const parts = version.split(".").map((n) => Number.parseInt(n, 10));
  const older = MIN_NODE.findIndex((min, i) => (parts[i] ?? 0) !== min);
  const tooOld = older !== -1 && (parts[older] ?? 0) < MIN_NODE[older]!;
  if (tooOld)
    return error("node", `Node.js ${version} is older than ${MIN_NODE.join(".")}`, `install Node.js ${MIN_NODE.join(".")} or newer (e.g. nvm install 20)`);
  return ok("node", `Node.js ${version}`);
}
