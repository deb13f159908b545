/**
 * How many events the next fold transaction may hold so that it writes at most `budgetBytes` of
 * write-ahead log. A transaction's pages stay in the WAL until it commits, and what a fold writes
 * depends on the traffic far more than on its event count: it rewrites every rollup and counter
 * row its events touch, once. With the soak benchmark's traffic (10k users, their apps and
 * models, `npm run bench:soak -- --rate 60000`) a fold of 40–55k events at the maximum rate
 * wrote 45–60 MiB, ≈ 1 KiB per event, against ≈ 0.25 KiB for a time-ordered long tail
 * (fold-wal-bound.test.ts). So the size is learnt from the folds themselves: the WAL's growth
 * over each transaction, per event.
 *
 * The estimate rises at once with a larger sample and falls slowly (a fifth of the way per
 * sample), so one cheap fold does not let the next one overshoot. Folds under `MIN_SAMPLE_EVENTS`
 * are not sampled: a few events write whole pages each, an estimate that would split large folds
 * for nothing. What a transaction writes grows less than linearly with its events (a larger fold
 * merges more events into each row), so an estimate from a smaller chunk errs on the safe side.
 */
export class FoldChunkSizer {
  private bytesPerEvent: number | undefined;

  /**
   * @param maxEvents the configured chunk (`foldChunkEvents`): never more.
   * @param budgetBytes WAL one transaction may write; undefined (a database in memory): no bound.
   */
  constructor(
    private readonly maxEvents: number,
    private readonly budgetBytes: number | undefined,
  ) {}

  /** Events the next chunk may hold (whole log rows: a larger batch is still a chunk alone). */
  next(): number {
    if (this.budgetBytes === undefined || this.bytesPerEvent === undefined) return this.maxEvents;
    const fits = Math.floor(this.budgetBytes / this.bytesPerEvent);
    return Math.min(this.maxEvents, Math.max(MIN_CHUNK_EVENTS, fits));
  }

  /** A fold transaction of `events` grew the WAL by `walGrowthBytes`. */
  observe(events: number, walGrowthBytes: number): void {
    // No growth: the log was restarted from its beginning meanwhile, the growth is unknown.
    if (events < MIN_SAMPLE_EVENTS || walGrowthBytes <= 0) return;
    const sample = walGrowthBytes / events;
    const previous = this.bytesPerEvent;
    this.bytesPerEvent =
      previous === undefined || sample > previous ? sample : previous * 0.8 + sample * 0.2;
  }

  /** The current estimate of WAL bytes per folded event (undefined until a fold is sampled). */
  get walBytesPerEvent(): number | undefined {
    return this.bytesPerEvent;
  }
}

/** Folds smaller than this are not sampled (see FoldChunkSizer). */
export const MIN_SAMPLE_EVENTS = 1_000;
/** A chunk is never made smaller than this by the estimate (the configured chunk may be). */
const MIN_CHUNK_EVENTS = 500;
