// A real pseudo-terminal for driving interactive CLI prompts in tests, through util-linux
// `script` (in Debian's essential bsdutils package, so on every fresh Debian/Ubuntu machine; no
// compiler, no native npm module): `script -qfec <command> /dev/null` runs the command on a new
// pty, copies our pipe into the pty's input (keystrokes, raw bytes) and the pty's output to its
// stdout, and exits with the command's exit code (-e).
import { spawn, type ChildProcess } from "node:child_process";

/** Keys as a terminal sends them. */
export const KEYS = { enter: "\r", down: "\x1b[B", up: "\x1b[A", right: "\x1b[C", left: "\x1b[D", ctrlC: "\x03" } as const;

/** Pause after a matched `expect` before keys are sent, ms (not a timing assertion). */
const SETTLE_MS = 250;

/** Removes ANSI escape sequences (colours, cursor moves) so prompts can be matched as text. */
export function stripAnsi(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: ANSI escapes are control characters
  return s.replace(/\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>78]/g, "");
}

/** A command running on a pseudo-terminal. */
export interface PtySession {
  proc: ChildProcess;
  /** Everything the terminal showed so far, ANSI stripped. */
  screen(): string;
  /** Types `keys` (raw bytes: text, {@link KEYS}). */
  send(keys: string): void;
  /**
   * Waits until the screen, after the previous `expect`'s match, contains `text`, then a short
   * settle pause so the prompt listens before the next keys.
   * @throws Error after `timeoutMs` (default 20 s) with the screen so far
   */
  expect(text: string, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code. */
  exited: Promise<number | null>;
}

/** Starts `argv` (no shell quoting needed: each argument is quoted here) on a pseudo-terminal. */
export function startPty(argv: string[], env: NodeJS.ProcessEnv): PtySession {
  // The pty starts 0x0 (our stdin is a pipe, so script copies no size): give it one first.
  const command = `stty cols 120 rows 40; exec ${argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ")}`;
  const proc = spawn("script", ["-qfec", command, "/dev/null"], {
    env: { ...env, TERM: "xterm-256color", COLUMNS: "120", LINES: "40" },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let raw = "";
  let mark = 0;
  const waiters = new Set<() => void>();
  proc.stdout!.on("data", (d: Buffer) => {
    raw += d.toString("utf8");
    for (const w of waiters) w();
  });
  proc.stderr!.on("data", (d: Buffer) => {
    raw += d.toString("utf8");
  });
  const exited = new Promise<number | null>((resolve) => proc.once("exit", (code) => resolve(code)));
  return {
    proc,
    screen: () => stripAnsi(raw),
    send: (keys) => void proc.stdin!.write(keys),
    expect(text, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const screen = stripAnsi(raw);
          const at = screen.indexOf(text, mark);
          if (at < 0) return false;
          mark = at + text.length;
          waiters.delete(check as () => void);
          clearTimeout(timer);
          // Clack swaps its input handler between prompts: keys sent while it does are lost, so
          // give the prompt that just drew a moment to listen.
          setTimeout(resolve, SETTLE_MS);
          return true;
        };
        const timer = setTimeout(() => {
          waiters.delete(check as () => void);
          reject(new Error(`timed out waiting for ${JSON.stringify(text)}; screen:\n${stripAnsi(raw).slice(-3000)}`));
        }, timeoutMs);
        if (!check()) waiters.add(check as () => void);
      });
    },
    exited,
  };
}
