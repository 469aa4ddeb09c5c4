export { backoffMs, sleep, type BackoffPolicy } from "./backoff.js";
export { CircuitBreaker, type BreakerPolicy, type BreakerState } from "./breaker.js";
export { classify, type SwitchReason, type Verdict } from "./classify.js";
export { KeyRing, type KeyChoice } from "./keys.js";
export {
  DEFAULT_RESILIENCE,
  ProviderResilience,
  type ModelRef,
  type ProviderResilienceOptions,
  type ResiliencePolicy,
  type SwitchNotice,
} from "./resilient.js";
