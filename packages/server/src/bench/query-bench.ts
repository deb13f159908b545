/**
 * `npm run bench:query` — the dashboard's panel queries at scale on SQLite.
 *
 * Loads BENCH_QUERY_EVENTS (default 10,000,000) events over 30 days — 10k users with a long tail,
 * 50 apps, 20 models, time-ordered ids — through the store's batch path (`applyBatch`, 5,000 per
 * transaction, as the group committer does), then measures p50/p95 of each panel's query for the
 * last hour, 24 hours, 7 and 30 days. BENCH_QUERY_RUNS (default 10) runs per query.
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

/** The panels' queries, as the dashboard asks them (see packages/dashboard/src/views). */
function panelQueries(range: string): Array<[string, string]> {
  const interval = range === '1h' ? 'minute' : range === '24h' || range === '7d' ? 'hour' : 'day';
  return [
    ['KPIs: totals', ''],
    [`tokens over time by model (${interval})`, `interval=${interval}&groupBy=model`],
    [`tokens over time by app (${interval})`, `interval=${interval}&groupBy=app`],
    ['usage by app and model', 'groupBy=app,model'],
    ['model share', 'groupBy=model&orderBy=totalTokens&limit=20'],
    ['top 10 users', 'groupBy=user&orderBy=totalTokens&limit=10'],
    ['app × user heat map (top 20 users)', 'groupBy=app,user&orderBy=totalTokens&limit=1000'],
    ['top apps', 'groupBy=app&orderBy=totalTokens&limit=50'],
    ['unpriced models', 'groupBy=model,provider&orderBy=unpricedTokens&limit=100'],
    ['one user by model over time', `interval=${interval}&groupBy=model&user=user-00042`],
  ];
}

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
          latencyMs: undefined,
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
  {
    const lines: string[] = [];
    for (const [range, spanMs] of [
      ['1h', HOUR],
      ['24h', DAY],
      ['7d', 7 * DAY],
      ['30d', 30 * DAY],
    ] as const) {
      for (const [name, params] of panelQueries(range)) {
        const search = new URLSearchParams(params);
        search.set('from', String(end - spanMs));
        search.set('to', String(end));
        const query = parseUsageQuery(search, {
          projectId: 'p',
          nowMs: end,
          minuteRetentionMs: 7 * DAY,
        });
        const times: number[] = [];
        let rows = 0;
        for (let r = 0; r < RUNS; r++) {
          const t = performance.now();
          rows = (await store.queryUsage(query)).length;
          times.push(performance.now() - t);
        }
        times.sort((a, b) => a - b);
        lines.push(
          `${range.padEnd(4)} ${name.padEnd(42)} p50 ${fmt(percentile(times, 50), 1).padStart(8)} ms  p95 ${fmt(percentile(times, 95), 1).padStart(8)} ms  ${rows} rows  (${query.resolution} rollup)`,
        );
      }
    }
    return lines.join('\n');
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
