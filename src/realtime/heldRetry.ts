// A reader of the event log (the tailer, the webhook dispatcher) that finds
// rows held above the horizon must look again soon: the older transaction
// holding them back may write no event of its own, so no wake-up would ever
// say it ended. The first look comes after HELD_RETRY_MIN_MS and each further
// one waits twice as long, up to the poll interval, until reset() says the
// reader got past what was held.
import { timerDelay } from "../timers.js";

const HELD_RETRY_MIN_MS = 5;

export class HeldRetry {
  private delayMs = HELD_RETRY_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;

  constructor(
    private readonly maxDelayMs: number,
    private readonly wake: () => void,
  ) {}

  /** Wakes the reader after the current delay (once, however often it is asked meanwhile). */
  schedule(): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.wake();
    }, timerDelay(this.delayMs));
    this.timer.unref();
    this.delayMs = Math.min(this.delayMs * 2, this.maxDelayMs);
  }

  /** Nothing is held any more: the next hold starts from the shortest delay. */
  reset(): void {
    this.delayMs = HELD_RETRY_MIN_MS;
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }
}
