// Node's timers hold a signed 32-bit millisecond count: a longer delay (about
// 24.8 days or more) is replaced by 1 ms, so a far-off timer would fire at
// once, and an interval every millisecond.
export const MAX_TIMER_MS = 2_147_483_647;

/** A delay Node's setTimeout/setInterval will honour: within 0..MAX_TIMER_MS. */
export function timerDelay(ms: number): number {
  return Math.min(Math.max(0, ms), MAX_TIMER_MS);
}
