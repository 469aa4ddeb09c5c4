import { createServer } from "node:net";

/** `host:port` as written in URLs and error messages (`[::1]:7200` for IPv6). */
export function hostPort(host: string, port: number): string {
  return `${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}

/** What each bind error code means, for the message. */
const CAUSES: Record<string, string> = {
  EADDRINUSE: "address in use (another process, maybe another gateway, listens there; stop it or pick another port)",
  EACCES: "permission denied (ports below 1024 need privileges)",
  EADDRNOTAVAIL: "address not available (no interface of this machine has it)",
};

/**
 * The error a transport throws when it cannot listen, the same for both transports:
 * `cannot listen on 127.0.0.1:7200: address in use (...)`.
 * @param code the errno name (`EADDRINUSE`, ...), when known
 */
export function listenError(host: string, port: number, code: string | undefined): Error {
  const cause = code === undefined ? "unknown cause" : (CAUSES[code] ?? code);
  return Object.assign(new Error(`cannot listen on ${hostPort(host, port)}: ${cause}`), { code });
}

/**
 * Finds out why an address cannot be bound by trying it with a Node `net` server (which binds
 * without SO_REUSEPORT), then releasing it at once. uWebSockets.js only reports "no" when its
 * listen fails; this names the errno.
 * @returns the errno name, or undefined if the address turned out to be bindable
 */
export function probeBindError(host: string, port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve(undefined)));
  });
}
