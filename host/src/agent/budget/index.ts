export { BudgetGuard, estimateInputTokens, type BudgetGuardOptions, type MeteredUsage, type TurnMeter } from "./guard.js";
export { MemoryLedger, type BudgetLedger, type Charge, type CounterLimit, type CounterWarning, type Reservation } from "./ledger.js";
export { costUsd, DEFAULT_PRICES, PriceTable, totalTokens, type CallUsage } from "./pricing.js";
export { calendarWindow, type CalendarWindow } from "./windows.js";
export { summarizeUsage, type UsageSummary, type UsageSummaryOptions, type UsageGroupBy } from "./summary.js";
