/**
 * `npm run bench:query` — the dashboard's panel queries at scale on SQLite.
 *
 * Loads BENCH_QUERY_EVENTS (default 10,000,000) events over 30 days — 10k users with a long tail,
 * 50 apps, 20 models, time-ordered ids — through the store's batch path (`applyBatch`, 5,000 per
 * transaction, as the group committer does), then measures p50/p95 of every query the dashboard's
 * views send for its last-hour, 24-hour, 7-day and 30-day presets, with the ranges aligned as the
 * dashboard aligns them. BENCH_QUERY_RUNS (default 10) runs per query after one warm-up run.
 * BENCH_QUERY_DB=path keeps the loaded database there and, when it already holds a loaded
 * project, skips the load (the ranges then end where that load ended).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUNDLED_CATALOG,
  PriceCatalog,
  type PricedEvent,
  parseLatencyQuery,
  parseUsageQuery,
  priceEvent,
  type UsageEvent,
} from '@tokenwatch/core';
import { SqliteStore } from '../adapters/store/sqlite/sqlite-store.js';
import { DEMO_MODELS, rng } from '../demo/traffic.js';
import { uuidv7 } from '../util/uuidv7.js';
import { fmt, percentile } from './bench-support.js';

const EVENTS = Number(process.env.BENCH_QUERY_EVENTS ?? 10_000_000);
const RUNS = Number(process.env.BENCH_QUERY_RUNS ?? 10);
const DAYS = 30;
const BATCH = 5_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Zipf-like index sampler over n items (weight 1/(i+1)^s). */
function zipf(n: number, s: number, random: () => number): () => number {
  const cumulative: number[] = [];
  let sum = 0;
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s;
    cumulative.push(sum);
  }
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

/** A preset range as the dashboard resolves it (packages/dashboard/src/lib/time-range.ts). */
interface PresetRange {
  name: string;
  interval: 'minute' | 'hour' | 'day';
  /** Start and end of the chart's buckets, aligned to the interval. */
  fromMs: number;
  toMs: number;
  /** Start for range-wide queries: a minute-aligned start widened to its hour. */
  aggFromMs: number;
}

function presetRange(name: string, spanMs: number, nowMs: number): PresetRange {
  const interval = name === '1h' ? 'minute' : name === '30d' ? 'day' : 'hour';
  const step = { minute: 60_000, hour: HOUR, day: DAY }[interval];
  const toMs = Math.floor(nowMs / step) * step + step;
  const fromMs = Math.floor((nowMs - spanMs) / step) * step;
  return {
    name,
    interval,
    fromMs,
    toMs,
    aggFromMs: interval === 'minute' ? Math.floor(fromMs / HOUR) * HOUR : fromMs,
  };
}

/** Names a query's rows produced for the next queries (top users, top models, ...). */
type Found = Record<string, string[]>;

interface Panel {
  name: string;
  /** `series`: over the chart's buckets with the range's interval; `range`: one range-wide total. */
  kind: 'series' | 'range';
  /** Query parameters; a list repeats its parameter (`user=a&user=b`), as the dashboard sends. */
  params: (found: Found) => Record<string, string | string[]>;
  /** `count`: GET /v1/usage/count (the store's countGroups) instead of the rows. */
  count?: boolean;
  /** `latency`: GET /v1/latency (parsed by parseLatencyQuery: the histogram columns too). */
  latency?: boolean;
  /** Remembers the values of this dimension of the rows, as `found[key]`. */
  keep?: { key: string; dim: 'user' | 'app' | 'model' };
}

const ONE_USER = 'user-00042';

/**
 * Every query the dashboard's views send for one range, in order (see packages/dashboard/src/views:
 * overview, breakdown, top, user); later ones use the names earlier ones found, as the views do.
 */
const PANELS: Panel[] = [
  { name: 'overview: totals over time (KPIs)', kind: 'series', params: () => ({}) },
  {
    name: 'overview: top 8 models',
    kind: 'range',
    params: () => ({ groupBy: 'model', limit: '8' }),
    keep: { key: 'models', dim: 'model' },
  },
  {
    name: 'overview: top 8 models over time',
    kind: 'series',
    params: (f) => ({ groupBy: 'model', model: f.models ?? [] }),
  },
  {
    name: 'overview: top 8 apps',
    kind: 'range',
    params: () => ({ groupBy: 'app', limit: '8' }),
    keep: { key: 'apps', dim: 'app' },
  },
  {
    name: 'overview: top 8 apps over time',
    kind: 'series',
    params: (f) => ({ groupBy: 'app', app: f.apps ?? [] }),
  },
  {
    name: 'overview: active users (count)',
    kind: 'range',
    params: () => ({ groupBy: 'user' }),
    count: true,
  },
  { name: 'usage by app and model', kind: 'range', params: () => ({ groupBy: 'app,model' }) },
  { name: 'model share', kind: 'range', params: () => ({ groupBy: 'model' }) },
  {
    name: 'unpriced models',
    kind: 'range',
    params: () => ({ groupBy: 'model,provider', orderBy: 'unpricedTokens', limit: '100' }),
  },
  {
    name: 'top 20 users',
    kind: 'range',
    params: () => ({ groupBy: 'user', limit: '20' }),
    keep: { key: 'users', dim: 'user' },
  },
  {
    name: 'app × user heat map (top 20 users)',
    kind: 'range',
    params: (f) => ({ groupBy: 'app,user', user: f.users ?? [] }),
  },
  {
    name: 'top 20 users over time (sparklines)',
    kind: 'series',
    params: (f) => ({ groupBy: 'user', user: f.users ?? [] }),
  },
  {
    name: 'one user: apps × models',
    kind: 'range',
    params: () => ({ groupBy: 'app,model', user: ONE_USER }),
  },
  {
    name: 'one user: by model over time',
    kind: 'series',
    params: () => ({ groupBy: 'model', user: ONE_USER }),
  },
  // The breakdown's latency panels (p50/p95 per model and per app, top 10).
  {
    name: 'latency by model',
    kind: 'range',
    latency: true,
    params: () => ({ groupBy: 'model', limit: '10' }),
  },
  {
    name: 'latency by app',
    kind: 'range',
    latency: true,
    params: () => ({ groupBy: 'app', limit: '10' }),
  },
];

async function main(): Promise<void> {
  const keptPath = process.env.BENCH_QUERY_DB;
  const dir = keptPath ? undefined : mkdtempSync(join(tmpdir(), 'tw-query-bench-'));
  const path = keptPath ?? join(dir as string, 'tokenwatch.db');
  const reuse = keptPath !== undefined && existsSync(keptPath);
  const store = new SqliteStore({ path, synchronous: 'normal' });
  try {
    await store.migrate();
    // The ranges end where the load ended; a kept database remembers it beside the file.
    const endFile = `${path}.end`;
    const end = reuse ? Number(readFileSync(endFile, 'utf8')) : Date.now() - 60_000;
    if (!reuse) {
      await load(store, end);
      if (keptPath) writeFileSync(endFile, String(end));
    }
    process.stdout.write(`${await measure(store, end)}\n`);
  } finally {
    await store.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }
}

/** Loads EVENTS events ending at `end` through applyBatch. */
async function load(store: SqliteStore, end: number): Promise<void> {
  {
    await store.createProject({ id: 'p', name: 'bench', createdAtMs: 0 });
    const catalog = PriceCatalog.fromData(BUNDLED_CATALOG);
    const random = rng(7);
    const user = zipf(10_000, 1.1, random);
    const app = zipf(50, 1.0, random);
    const model = zipf(DEMO_MODELS.length, 0.9, random);
    const start = end - DAYS * DAY;
    process.stdout.write(`loading ${fmt(EVENTS)} events over ${DAYS} days through applyBatch...\n`);
    const loadStarted = performance.now();
    for (let done = 0; done < EVENTS; done += BATCH) {
      const batch: PricedEvent[] = [];
      for (let i = done; i < Math.min(EVENTS, done + BATCH); i++) {
        const timestampMs = start + Math.floor((i / EVENTS) * (end - start));
        const event: UsageEvent = {
          id: uuidv7(timestampMs),
          timestampMs,
          userId: `user-${String(user() + 1).padStart(5, '0')}`,
          appId: `app-${String(app() + 1).padStart(2, '0')}`,
          modelId: (DEMO_MODELS[model()] as [string, number])[0],
          provider: 'bedrock',
          inputTokens: 200 + Math.floor(random() * 2000),
          outputTokens: 50 + Math.floor(random() * 500),
          cacheReadTokens: random() < 0.3 ? Math.floor(random() * 3000) : 0,
          cacheWriteTokens: 0,
          // 200 ms to ~6 s, spread over the histogram's buckets (not drawn from `random`: the
          // other fields stay those of the figures measured before latency was kept).
          latencyMs: 200 + ((i * 7919) % 6007),
          status: 'ok',
          tags: undefined,
        };
        batch.push(priceEvent(event, 'p', catalog));
      }
      await store.applyBatch(batch, { nowMs: Date.now() });
      if ((done / BATCH) % 200 === 0 && done > 0) {
        const rate = done / ((performance.now() - loadStarted) / 1000);
        process.stdout.write(`  ${fmt(done)} events (${fmt(rate)} events/s)\n`);
      }
    }
    process.stdout.write(`loaded in ${fmt((performance.now() - loadStarted) / 1000, 0)} s\n\n`);
  }
}

/** Every panel's query for each range ending at `end`, RUNS times; one line per query. */
async function measure(store: SqliteStore, end: number): Promise<string> {
  const lines: string[] = [];
  for (const [name, spanMs] of [
    ['1h', HOUR],
    ['24h', DAY],
    ['7d', 7 * DAY],
    ['30d', 30 * DAY],
  ] as const) {
    const range = presetRange(name, spanMs, end);
    const found: Found = {};
    for (const panel of PANELS) {
      const search = new URLSearchParams({ limit: '10000' });
      for (const [name, value] of Object.entries(panel.params(found))) {
        if (!Array.isArray(value)) search.set(name, value);
        else for (const v of value) search.append(name, v);
      }
      search.set('from', String(panel.kind === 'series' ? range.fromMs : range.aggFromMs));
      search.set('to', String(range.toMs));
      if (panel.kind === 'series') search.set('interval', range.interval);
      const ctx = { projectId: 'p', nowMs: end, minuteRetentionMs: 7 * DAY };
      const query = panel.latency ? parseLatencyQuery(search, ctx) : parseUsageQuery(search, ctx);
      const times: number[] = [];
      let rows: Awaited<ReturnType<SqliteStore['queryUsage']>> = [];
      let count = 0;
      // One warm-up run, not counted: a dashboard kept open reads from a warm page cache.
      for (let r = -1; r < RUNS; r++) {
        const t = performance.now();
        if (panel.count) count = await store.countGroups(query);
        else rows = await store.queryUsage(query);
        if (r >= 0) times.push(performance.now() - t);
      }
      if (panel.keep) {
        const dim = panel.keep.dim;
        found[panel.keep.key] = rows.map((row) => row[dim]).filter((v): v is string => !!v);
      }
      times.sort((a, b) => a - b);
      const label = `${name} ${panel.name}`;
      lines.push(
        `${label.padEnd(46)} p50 ${fmt(percentile(times, 50), 1).padStart(8)} ms  p95 ${fmt(percentile(times, 95), 1).padStart(8)} ms  ${String(panel.count ? count : rows.length).padStart(5)} ${panel.count ? 'count' : 'rows '}  (${query.resolution})`,
      );
    }
  }
  return lines.join('\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
