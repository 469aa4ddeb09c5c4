import { useEffect, useRef, useState } from "preact/hooks";
import type { GatewayClient } from "../client/index.js";
import { fmtClock } from "../format.js";

const LEVELS = ["trace", "debug", "info", "warn", "error", "fatal"] as const;
type Level = (typeof LEVELS)[number];
const NAMES: Record<number, string> = { 10: "trace", 20: "debug", 30: "info", 40: "warn", 50: "error", 60: "fatal" };

interface Line {
  seq: number;
  level: number;
  time: number;
  msg: string;
  rest: string;
}

function parse(l: { seq: number; level: number; line: string }): Line {
  try {
    const { level, time, msg, pid, name, hostname, ...rest } = JSON.parse(l.line) as Record<string, unknown>;
    void pid, name, hostname, level;
    return { seq: l.seq, level: l.level, time: Number(time), msg: String(msg ?? ""), rest: Object.keys(rest).length ? JSON.stringify(rest) : "" };
  } catch {
    return { seq: l.seq, level: l.level, time: Date.now(), msg: l.line, rest: "" };
  }
}

/** Logs: a live tail of the gateway's log (`logs.tail`, secrets redacted by the gateway), by level. */
export function Logs(props: { client: GatewayClient }) {
  const [level, setLevel] = useState<Level>("info");
  const [paused, setPaused] = useState(false);
  const [lines, setLines] = useState<Line[]>([]);
  const [error, setError] = useState<string | undefined>(undefined);
  const after = useRef(0);
  const shownLevel = useRef<Level | undefined>(undefined);
  // The last lines once (`logs.tail`), then pushed ones (`events.subscribe` topic `logs:<level>`).
  useEffect(() => {
    if (paused) return;
    if (shownLevel.current !== level) {
      // A new level starts over.
      shownLevel.current = level;
      after.current = 0;
      setLines([]);
    }
    let alive = true;
    let sub: ReturnType<GatewayClient["subscribe"]> | undefined;
    const add = (ls: { seq: number; level: number; line: string }[]) => {
      if (ls.length) setLines((old) => [...old, ...ls.filter((l) => l.seq > after.current).map(parse)].slice(-1000));
    };
    props.client.call("logs.tail", { level, afterSeq: after.current, limit: 500 }).then(
      (r) => {
        if (!alive) return;
        add(r.lines);
        after.current = Math.max(after.current, r.lastSeq);
        setError(undefined);
        sub = props.client.subscribe(
          [`logs:${level}`],
          (_t, data) => {
            const d = data as { lines: { seq: number; level: number; line: string }[]; lastSeq: number };
            add(d.lines);
            after.current = Math.max(after.current, d.lastSeq);
          },
          { [`logs:${level}`]: after.current },
        );
        sub.ready.catch((err: Error) => alive && setError(err.message));
      },
      (err: Error) => alive && setError(err.message),
    );
    return () => {
      alive = false;
      sub?.close();
    };
  }, [level, paused, props.client]);
  return (
    <section>
      <h2>Logs</h2>
      <div class="row">
        <label>
          Level{" "}
          <select aria-label="minimum level" value={level} onChange={(e) => setLevel((e.target as HTMLSelectElement).value as Level)}>
            {LEVELS.map((l) => (
              <option key={l} value={l}>
                {l}+
              </option>
            ))}
          </select>
        </label>
        <button type="button" onClick={() => setPaused(!paused)}>
          {paused ? "Resume" : "Pause"}
        </button>
        <button type="button" onClick={() => setLines([])}>
          Clear
        </button>
      </div>
      {error ? <p class="error">{error}</p> : null}
      <div class="logs" data-testid="log-lines">
        {lines
          .slice()
          .reverse()
          .map((l) => (
            <div class={`log l${l.level}`} key={l.seq}>
              <span class="muted">{fmtClock(l.time)}</span> <span class="lvl">{NAMES[l.level] ?? l.level}</span> <span class="msg">{l.msg}</span>{" "}
              <span class="muted rest">{l.rest}</span>
            </div>
          ))}
      </div>
    </section>
  );
}
