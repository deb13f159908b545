import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Metrics } from './metrics.js';

const WINDOW_MS = 10_000;

/**
 * Exports the HTTP thread's event-loop delay (how late timers and I/O callbacks run: parsing,
 * pricing and answering wait that long) as gauges over the last complete 10-second window, so
 * every scrape reads the same value whoever else scrapes. Returns a stop function.
 */
export function watchEventLoopDelay(metrics: Metrics): () => void {
  const histogram = monitorEventLoopDelay({ resolution: 10 });
  histogram.enable();
  let last = { p99: 0, max: 0 };
  const timer = setInterval(() => {
    last = { p99: histogram.percentile(99) / 1e9, max: histogram.max / 1e9 };
    histogram.reset();
  }, WINDOW_MS);
  timer.unref();
  metrics.addGauge(
    'tokenwatch_event_loop_delay_p99_seconds',
    'p99 event-loop delay of the HTTP thread over the last 10 s.',
    () => last.p99,
  );
  metrics.addGauge(
    'tokenwatch_event_loop_delay_max_seconds',
    'Largest event-loop delay of the HTTP thread over the last 10 s.',
    () => last.max,
  );
  return () => {
    clearInterval(timer);
    histogram.disable();
  };
}
