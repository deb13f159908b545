/*
 * How big and how long the SQLite fold's pieces are (see EventLogFold): the defaults of its
 * options, derived from the WAL limit, and the strides its transactions advance by between two
 * looks at the clock.
 */

/**
 * Events per fold chunk by default, from the WAL limit: what a fold plans at once. A fold at the
 * normal pace is one chunk (about a second of events plus what arrives while it runs: 60–75k at
 * the maximum rate of `npm run bench:ingest`); a backlog (after an overload, at a restart, under
 * a read) is split, which bounds the memory a plan holds. The WAL is bounded by the rows per
 * transaction instead (`defaultFoldSliceRows`): a chunk is written over several. Larger chunks
 * merge more events into each rollup row, so less work per event: chunks of ~800 events took
 * 2.4× the CPU per event of chunks of 16k with the alerts benchmark's traffic
 * (docs/benchmarks-history.md § Alerts).
 */
export function defaultFoldChunkEvents(maxWalMiB: number): number {
  return Math.max(1, Math.floor(maxWalMiB * FOLD_EVENTS_PER_WAL_MIB));
}

const FOLD_EVENTS_PER_WAL_MIB = 2_000;

/**
 * Rollup rows per fold transaction by default, from the WAL limit: a quarter of it, at two pages
 * per row (a long tail of users puts nearly every row of a fold on a page of its own, and the
 * full rollups' by-series index adds one more). 2,048 for the default 64 MiB.
 */
export function defaultFoldSliceRows(maxWalMiB: number): number {
  return Math.max(64, Math.floor((maxWalMiB * 1024 * 1024) / 4 / SLICE_BYTES_PER_ROW));
}

/**
 * How long the fold runs transactions back to back by default before it lets the calls queued
 * meanwhile run (what an append waits for at most, plus one transaction), and, while the
 * unfolded events pass half a chunk, the longer turn that lets the fold catch up.
 */
export const DEFAULT_FOLD_TURN_MS = 10;
export const BEHIND_TURN_MS = 50;
/**
 * How long a fold transaction runs at most by default, about (see EventLogFoldParts.stepMs in event-log-fold.ts): an
 * accumulating one of 32k events took 110–150 ms, a slice of 2,048 rows 12–27 ms.
 */
export const DEFAULT_FOLD_STEP_MS = 8;
/** Events an accumulating transaction resolves at most, per row of a slice (see EventLogFold's step). */
export const ACCUMULATE_EVENTS = 16;
/** Events accumulated between two looks at the clock (see stepMs). */
export const ACCUMULATE_STRIDE = 512;
/** Rollup rows written between two looks at the clock (see stepMs). */
export const WRITE_STRIDE = 256;

/**
 * Runs `stride` over [from, end) a stride at a time, until one stops short of its end (it
 * returns where it stopped) or the step is `overdue`; returns how far it got.
 */
export function inStrides(
  from: number,
  end: number,
  size: number,
  overdue: () => boolean,
  stride: (from: number, to: number) => number,
): number {
  let at = from;
  while (at < end) {
    const to = Math.min(end, at + size);
    at = stride(at, to);
    if (at < to || overdue()) break;
  }
  return at;
}

/** What one rollup row of a fold transaction may add to the WAL, at most: two 4 KiB pages. */
export const SLICE_BYTES_PER_ROW = 2 * 4096;
