import { useEffect, useRef, useState } from "preact/hooks";

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
 * and error. `deps` restart it.
 */
export function usePoll<T>(
  load: () => Promise<T>,
  intervalMs: number,
  deps: unknown[] = [],
): { value: T | undefined; error: string | undefined; reload: () => void } {
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
  return { value, error, reload: () => setN((x) => x + 1) };
}
