/**
 * `node packages/server/dist/bench/ingest-stages-bench.js` — what each stage of embedded ingest
 * costs per event, in CPU time, in one process and without HTTP: parse a request body, validate,
 * price, encode the batch for the writer thread, apply it (id claims + event-log row, one
 * `synchronous=FULL` transaction per flush) and fold it into the rollups. CPU time, not wall time:
 * on a shared machine it moves far less with the load than throughput does (see
 * docs/benchmarks-history.md § Ingest). The same events as `bench:ingest`; two rounds, the second
 * warm.
 *
 * Environment: BENCH_EVENTS (default 60000), BENCH_FLUSH (events per applyBatch, default 3200:
 * 32 connections × 100), BENCH_FOLD_EVERY (events per fold, default 10000).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUNDLED_CATALOG,
  ModelRefCache,
  PriceCatalog,
  type PricedEvent,
  priceEvent,
  type UsageEvent,
  validateBatch,
} from '@tokenwatch/core';
import { encodeEvents } from '../adapters/store/sqlite/event-log.js';
import { SqliteDatabase } from '../adapters/store/sqlite/sqlite-database.js';
import { createTrafficGenerator } from '../demo/traffic.js';
import { parseJson } from '../http/read-body.js';
import { uuidv7 } from '../util/uuidv7.js';
import { fmt, ownCpuMs } from './bench-support.js';

const TOTAL = Number(process.env.BENCH_EVENTS ?? 60_000);
const FLUSH = Number(process.env.BENCH_FLUSH ?? 3200);
const FOLD_EVERY = Number(process.env.BENCH_FOLD_EVERY ?? 10_000);
const PER_REQUEST = 100;

function makeBodies(): Buffer[] {
  const start = Date.now() - 60_000;
  const next = createTrafficGenerator({ users: 10_000, seed: 1, nowMs: start, spreadMs: 0 });
  const bodies: Buffer[] = [];
  let batch = [];
  for (let i = 0; i < TOTAL; i++) {
    const e = next();
    e.timestamp = start + Math.floor((i / TOTAL) * 60_000);
    e.id = uuidv7(e.timestamp);
    batch.push(e);
    if (batch.length === PER_REQUEST) {
      bodies.push(Buffer.from(JSON.stringify({ events: batch })));
      batch = [];
    }
  }
  if (batch.length > 0) bodies.push(Buffer.from(JSON.stringify({ events: batch })));
  return bodies;
}

/** Runs `work`, prints its CPU time per event, and returns its result. */
function stage<T>(name: string, work: () => T): T {
  const started = ownCpuMs();
  const result = work();
  const perEvent = ((ownCpuMs() - started) * 1000) / TOTAL;
  process.stdout.write(`  ${name.padEnd(44)} ${fmt(perEvent, 2).padStart(7)} µs/event\n`);
  return result;
}

function round(bodies: Buffer[], warm: boolean): void {
  process.stdout.write(`${warm ? 'second (warm)' : 'first (cold)'} round, ${fmt(TOTAL)} events:\n`);
  const catalog = PriceCatalog.fromData(BUNDLED_CATALOG);
  const models = new ModelRefCache();
  const parsed = stage('JSON.parse of the bodies', () => bodies.map((b) => parseJson(b)));
  const valid = stage('validateBatch', () =>
    parsed.map((body) => validateBatch(body, { nowMs: Date.now() }).events),
  );
  const priced = stage('priceEvent (normalise, price, fingerprint)', () =>
    valid.map((events: UsageEvent[]) => events.map((e) => priceEvent(e, 'p1', catalog, models))),
  );
  const flushes: PricedEvent[][] = [];
  const perFlush = Math.max(1, Math.floor(FLUSH / PER_REQUEST));
  for (let i = 0; i < priced.length; i += perFlush)
    flushes.push(priced.slice(i, i + perFlush).flat());
  const encoded = stage('encodeEvents (HTTP thread, per flush)', () => flushes.map(encodeEvents));
  const dir = mkdtempSync(join(tmpdir(), 'tw-stages-'));
  try {
    // Folds only when told to, so the two stages are timed apart.
    const db = new SqliteDatabase({
      path: join(dir, 'tokenwatch.db'),
      foldIntervalMs: 3_600_000,
      foldMaxEvents: Number.MAX_SAFE_INTEGER,
    });
    db.migrate();
    let applyMs = 0;
    let foldMs = 0;
    let sinceFold = 0;
    for (const text of encoded) {
      let started = ownCpuMs();
      const result = db.applyEncodedBatch(text, { nowMs: Date.now() });
      applyMs += ownCpuMs() - started;
      sinceFold += result.accepted;
      if (sinceFold >= FOLD_EVERY) {
        started = ownCpuMs();
        db.foldNow();
        foldMs += ownCpuMs() - started;
        sinceFold = 0;
      }
    }
    const started = ownCpuMs();
    db.foldNow();
    foldMs += ownCpuMs() - started;
    const line = (name: string, ms: number) =>
      process.stdout.write(
        `  ${name.padEnd(44)} ${fmt((ms * 1000) / TOTAL, 2).padStart(7)} µs/event\n`,
      );
    line(`applyBatch (writer; ${FLUSH} events/flush)`, applyMs);
    line(`fold (writer; every ${FOLD_EVERY} events)`, foldMs);
    db.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bodies = makeBodies();
round(bodies, false);
round(bodies, true);
process.stdout.write(
  `load average ${(await import('node:os'))
    .loadavg()
    .map((l) => fmt(l, 1))
    .join(' / ')}\n`,
);
