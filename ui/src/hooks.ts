import { useEffect, useRef, useState } from "preact/hooks";
import type { GatewayClient } from "./client/index.js";

/** Hash route: `#/sessions/<key>` -> ["sessions", "<key>"]. */
export function useRoute(): string[] {
  const read = () =>
    location.hash
      .replace(/^#\/?/, "")
      .split("/")
      .filter(Boolean)
      .map((p) => decodeURIComponent(p));
  const [route, setRoute] = useState(read);
  useEffect(() => {
    const on = () => setRoute(read());
    addEventListener("hashchange", on);
    return () => removeEventListener("hashchange", on);
  }, []);
  return route;
}

/**
 * Runs `load` now and every `intervalMs` (while the tab is visible), keeping the latest value
 * and error. `deps` restart it; `reload` runs it again; `patch` changes the value in place (a
 * pushed change applied without reading again).
 */
export function usePoll<T>(
  load: () => Promise<T>,
  intervalMs: number,
  deps: unknown[] = [],
): { value: T | undefined; error: string | undefined; reload: () => void; patch: (f: (v: T | undefined) => T | undefined) => void } {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const tick = useRef(0);
  const [n, setN] = useState(0);
  useEffect(() => {
    let alive = true;
    const run = async () => {
      const my = ++tick.current;
      try {
        const v = await load();
        if (alive && my === tick.current) {
          setValue(v);
          setError(undefined);
        }
      } catch (err) {
        if (alive) setError((err as Error).message);
      }
    };
    void run();
    const t = intervalMs > 0 ? setInterval(() => document.visibilityState === "visible" && void run(), intervalMs) : undefined;
    return () => {
      alive = false;
      if (t !== undefined) clearInterval(t);
    };
  }, [...deps, n]);
  return { value, error, reload: () => setN((x) => x + 1), patch: setValue };
}

/**
 * The latest `data` pushed for `topic` (`events.subscribe`), undefined until the first push.
 * Resubscribes when the client (a reconnect) or the topic changes.
 */
export function useTopic<T>(client: GatewayClient, topic: string): { value: T | undefined; error: string | undefined } {
  const [value, setValue] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  useEffect(() => {
    setValue(undefined);
    const sub = client.subscribe([topic], (_t, data) => setValue(data as T));
    sub.ready.then(
      () => setError(undefined),
      (err: Error) => setError(err.message),
    );
    return sub.close;
  }, [client, topic]);
  return { value, error };
}
