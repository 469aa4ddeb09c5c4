/**
 * A test-only guard for the objects `appendEvents` shares with the projector's queue (the parsed
 * events of an append whose events were returned or hold dedupe keys): nothing may modify them
 * (a change would reach SurrealDB, or differ from what the journal holds). With
 * `EXOCLAW_FREEZE_SHARED_EVENTS=1` in the environment (vitest.config.ts sets it for the tests)
 * they are deep-frozen, so a caller that writes to one throws a TypeError in the test that does
 * it. Read once at load: production pays one constant check per parsed append.
 */
export const FREEZE_SHARED_EVENTS = process.env.EXOCLAW_FREEZE_SHARED_EVENTS === "1";

/** Freezes `value` and every object and array reachable from it. @returns `value` */
export function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
