/**
 * `npm run bench:fold-wal` — what one fold transaction writes to the SQLite write-ahead log, and
 * where: the store is fed the long-tail traffic of `bench:ingest` (10k users over their apps and
 * models, time-ordered over `BENCH_SPAN_MINUTES`), folded every `BENCH_FOLD_EVENTS` events (about
 * one second of events at the maximum rate of `bench:ingest`), with the WAL emptied before each
 * fold so that its size after the fold is exactly what the fold wrote. For the last fold it
 * reads the WAL's frames and names the table or index of each page (SQLite's `dbstat`).
 *
 * This is the measurement behind issue 11's bound at the maximum rate: a fold's WAL is its
 * distinct pages, and with a long tail of users nearly every row it upserts is on a page of its
 * own. Deterministic for a given traffic (the same seed gives the same pages), unlike the
 * timings, which are CPU time of this process.
 *
 * Environment: BENCH_EVENTS (default 1,200,000), BENCH_FOLD_EVENTS (default 60,000),
 * BENCH_SPAN_MINUTES (default 60).
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BUNDLED_CATALOG,
  ModelRefCache,
  PriceCatalog,
  type PricedEvent,
  priceEvent,
  validateBatch,
} from '@tokenwatch/core';
import Database from 'better-sqlite3';
import { encodeEvents } from '../adapters/store/sqlite/event-log.js';
import { SqliteDatabase } from '../adapters/store/sqlite/sqlite-database.js';
import { createTrafficGenerator, type WireEvent } from '../demo/traffic.js';
import { uuidv7 } from '../util/uuidv7.js';
import { fmt, loadAverage, ownCpuMs } from './bench-support.js';

const TOTAL = Number(process.env.BENCH_EVENTS ?? 1_200_000);
const FOLD_EVENTS = Number(process.env.BENCH_FOLD_EVENTS ?? 60_000);
const SPAN_MS = Number(process.env.BENCH_SPAN_MINUTES ?? 60) * 60_000;
/** Events per applyBatch: 32 connections × 100, as under `bench:ingest`. */
const FLUSH = 3_200;
/** The most events one request may carry (the contract's limit). */
const PER_REQUEST = 1_000;
const MIB = 1024 * 1024;

const catalog = PriceCatalog.fromData(BUNDLED_CATALOG);
const models = new ModelRefCache();

function priced(wire: WireEvent[]): PricedEvent[] {
  const out: PricedEvent[] = [];
  for (let i = 0; i < wire.length; i += PER_REQUEST) {
    const batch = validateBatch({ events: wire.slice(i, i + PER_REQUEST) }, { nowMs: Date.now() });
    if (batch.issues.length > 0)
      throw new Error(`invalid bench events: ${batch.issues[0]?.reason}`);
    for (const e of batch.events) out.push(priceEvent(e, 'p1', catalog, models));
  }
  return out;
}

/** Pages of the WAL file by the table or index that owns them (one entry per distinct page). */
function walPagesByOwner(walPath: string, db: Database.Database): Map<string, number> {
  const wal = readFileSync(walPath);
  const pageSize = wal.readUInt32BE(8);
  const pages = new Set<number>();
  // A 32-byte header, then frames of a 24-byte header (page number first) and one page.
  for (let at = 32; at + 24 + pageSize <= wal.length; at += 24 + pageSize)
    pages.add(wal.readUInt32BE(at));
  const owners = new Map(
    (db.prepare('SELECT pageno, name FROM dbstat').raw().all() as Array<[number, string]>).map(
      ([page, name]) => [page, name],
    ),
  );
  const byOwner = new Map<string, number>();
  for (const page of pages) {
    const owner = owners.get(page) ?? '(free or new)';
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + 1);
  }
  return byOwner;
}

const dir = mkdtempSync(join(tmpdir(), 'tw-fold-wal-'));
try {
  const path = join(dir, 'tokenwatch.db');
  const store = new SqliteDatabase({
    path,
    // Folds only when told, whole, and the WAL is left alone: this bench measures it.
    foldIntervalMs: 3_600_000,
    foldMaxEvents: Number.MAX_SAFE_INTEGER,
    foldChunkEvents: Number.MAX_SAFE_INTEGER,
    maxWalMiB: 1_000_000,
    externalCheckpoints: true,
  });
  store.migrate();
  const side = new Database(path);
  const start = Math.floor(Date.now() / 3_600_000) * 3_600_000 - SPAN_MS;
  const next = createTrafficGenerator({ users: 10_000, seed: 1, nowMs: start, spreadMs: 0 });
  process.stdout.write(
    `bench:fold-wal — ${fmt(TOTAL)} events over ${SPAN_MS / 60_000} min, a fold every ${fmt(FOLD_EVENTS)}; load average ${loadAverage()}\n  fold  events so far  series  fold CPU µs/event  WAL of the fold\n`,
  );
  let sent = 0;
  let folds = 0;
  let last: Map<string, number> | undefined;
  const walPath = `${path}-wal`;
  while (sent < TOTAL) {
    const inFold = Math.min(FOLD_EVENTS, TOTAL - sent);
    for (let done = 0; done < inFold; ) {
      const wire: WireEvent[] = [];
      for (; wire.length < FLUSH && done < inFold; done++, sent++) {
        const e = next();
        e.timestamp = start + Math.floor((sent / TOTAL) * SPAN_MS);
        e.id = uuidv7(e.timestamp);
        wire.push(e);
      }
      store.applyEncodedBatch(encodeEvents(priced(wire)), { nowMs: Date.now() });
    }
    side.pragma('wal_checkpoint(TRUNCATE)');
    const cpuBefore = ownCpuMs();
    store.foldNow();
    const cpuMs = ownCpuMs() - cpuBefore;
    folds++;
    const walBytes = statSync(walPath).size;
    if (sent >= TOTAL) last = walPagesByOwner(walPath, side);
    const series = side.prepare('SELECT COUNT(*) FROM series').pluck().get() as number;
    process.stdout.write(
      `  ${String(folds).padStart(4)}  ${fmt(sent).padStart(13)}  ${fmt(series).padStart(6)}  ${fmt((cpuMs * 1000) / inFold, 1).padStart(17)}  ${fmt(walBytes / MIB, 1).padStart(10)} MiB\n`,
    );
  }
  if (last) {
    const total = [...last.values()].reduce((a, b) => a + b, 0);
    process.stdout.write(
      `the last fold's ${fmt(total)} pages (${fmt((total * 4096) / MIB, 1)} MiB) by table or index:\n`,
    );
    for (const [owner, pages] of [...last].sort((a, b) => b[1] - a[1])) {
      if (pages / total < 0.005) continue;
      process.stdout.write(
        `  ${owner.padEnd(34)} ${fmt(pages).padStart(6)} pages  ${((100 * pages) / total).toFixed(1).padStart(5)} %\n`,
      );
    }
  }
  side.close();
  store.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
