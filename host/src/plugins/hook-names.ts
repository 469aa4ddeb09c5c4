/**
 * The lifecycle hook names of the plugin contract (wit/exoclaw.wit, world `hooks`): each is a
 * core export of that name (`func() -> i32`, MessagePack in and out, like `call`), declared by
 * the plugin in `capabilities.hooks` and run only when granted, approved and listed in `[hooks] order`.
 */
export const HOOK_NAMES = [
  "before_message",
  "before_tool_call",
  "after_tool_call",
  "before_model_call",
  "agent_response",
  "session_start",
  "session_end",
  "on_error",
] as const;

/** One lifecycle hook (see {@link HOOK_NAMES}). */
export type HookName = (typeof HOOK_NAMES)[number];

/** Whether `name` is a hook name. */
export function isHookName(name: string): name is HookName {
  return (HOOK_NAMES as readonly string[]).includes(name);
}
