import { makePricedEvent } from '@tokenwatch/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { stringEntryBytes } from './id-dictionary.js';
import { PendingCounters } from './pending-counters.js';
import { RollupWriter } from './rollup-writer.js';
import { SqliteDatabase } from './sqlite-database.js';

/**
 * The writer's in-memory caches (series ids, coarse ids, folded rule counters) are bounded by
 * bytes: a long tail of users passes through them without growing the heap, and what they
 * drop is read again from the database, so the totals stay exact.
 */
const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
let database: SqliteDatabase;

beforeEach(() => {
  database = new SqliteDatabase({ path: ':memory:' });
  database.migrate();
  database.projects().createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
});
afterEach(() => database.close());

function sum(sql: string): number {
  return database.db.prepare(sql).pluck().get() as number;
}

describe('rollup id caches under a byte budget', () => {
  it('stay under the budget through a long tail of series and keep every total exact', () => {
    const budget = 64 * 1024;
    const writer = new RollupWriter(database.db, budget);
    const users = 3_000;
    for (let round = 0; round < 3; round++) {
      const events = Array.from({ length: users }, (_, u) =>
        makePricedEvent({
          userId: `user-${String(u).padStart(5, '0')}-of-a-long-tail`,
          appId: `app-${u % 5}`,
          timestampMs: T0 + round * 60_000,
          tags: { team: `team-${u % 40}` },
        }),
      );
      database.db.transaction(() => writer.write(events, T0))();
      writer.committed();
      expect(writer.cachedBytes()).toBeLessThanOrEqual(budget);
    }
    // A series dropped from the cache and seen again got its own id back, not a second one.
    expect(sum('SELECT COUNT(*) FROM series')).toBe(users);
    expect(sum('SELECT COUNT(*) FROM user_ids')).toBe(users);
    expect(sum('SELECT COUNT(*) FROM tags')).toBe(40);
    expect(sum('SELECT COUNT(*) FROM rollup_hour')).toBe(users);
    for (const table of [
      'rollup_minute',
      'rollup_hour',
      'rollup_day',
      'rollup_app_hour',
      'rollup_user_hour',
      'rollup_per_user_hour',
      'rollup_per_model_day',
      'rollup_per_app_hour',
      'rollup_tag_day',
    ]) {
      expect(sum(`SELECT SUM(requests) FROM ${table}`), table).toBe(3 * users);
    }
    expect(sum('SELECT MIN(requests) FROM rollup_per_user_day')).toBe(3);
    expect(sum('SELECT MAX(requests) FROM rollup_per_user_day')).toBe(3);
  });
});

describe('folded rule counters under a byte budget', () => {
  it('drop the buckets read least recently and read them again exactly', () => {
    const budget = 64 * 1024;
    // A clock a few seconds on per hour read: the hour before is no longer the working set.
    let nowMs = 0;
    const counters = new PendingCounters(database.db, budget, () => nowMs);
    const insert = database.db.prepare(
      'INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms) VALUES (?, ?, ?, ?, 0)',
    );
    const scopes = 200;
    const hours = 12;
    const expected = (scope: number, hour: number) => scope * 1_000 + hour + 1;
    // A read may add one whole bucket past the budget; the next read drops the oldest ones.
    const oneBucket = scopes * stringEntryBytes('user-00000');
    for (let h = 0; h < hours; h++) {
      for (let s = 0; s < scopes; s++)
        insert.run('rule-1', `user-${String(s).padStart(5, '0')}`, T0 + h * HOUR, expected(s, h));
    }
    const read = (s: number, h: number) => {
      const scopeKey = `user-${String(s).padStart(5, '0')}`;
      const bucket = T0 + h * HOUR;
      const values = counters.values(
        [{ counterKey: 'rule-1', scopeKey, fromMs: bucket, toMs: bucket }],
        new Map(),
      );
      return values.get(`rule-1\u0000${scopeKey}`)?.get(bucket);
    };
    // Hour after hour, every scope key twice (the second pass reads buckets cached whole).
    for (let pass = 0; pass < 2; pass++) {
      for (let h = 0; h < hours; h++) {
        nowMs += 3_000;
        for (let s = 0; s < scopes; s++) {
          expect(read(s, h)).toBe(expected(s, h));
          expect(counters.foldedCacheBytes).toBeLessThanOrEqual(budget + oneBucket);
        }
      }
    }
    expect(12 * oneBucket).toBeGreaterThan(2 * budget);
    // Hour 0 was dropped long ago: read again from the table, still exact.
    expect(read(7, 0)).toBe(expected(7, 0));
  });

  it('keep the buckets in use even past the budget: a hot bucket larger than it is read whole once', () => {
    const budget = 16 * 1024; // far below one bucket of 2,000 scope keys
    const bucketReads: string[] = [];
    const db = database.db;
    const prepare = db.prepare.bind(db);
    // Counts the whole-bucket reads (the statement that reads every scope key of a bucket).
    const counting = new Proxy(db, {
      get(target, prop, receiver) {
        if (prop !== 'prepare') return Reflect.get(target, prop, receiver);
        return (sql: string) => {
          const statement = prepare(sql);
          if (!sql.includes('WHERE rule_id = ? AND bucket_start_ms = ?')) return statement;
          const all = statement.all.bind(statement);
          return Object.assign(statement, {
            all: (...args: unknown[]) => {
              bucketReads.push(sql);
              return all(...args);
            },
          });
        };
      },
    });
    let nowMs = 0;
    const counters = new PendingCounters(counting, budget, () => nowMs);
    const insert = db.prepare(
      'INSERT INTO rule_counters (rule_id, scope_key, bucket_start_ms, value, updated_at_ms) VALUES (?, ?, ?, ?, 0)',
    );
    const scopes = 2_000;
    for (let s = 0; s < scopes; s++) insert.run('rule-hot', `u-${s}`, T0, s + 1);
    const read = (s: number) =>
      counters
        .values([{ counterKey: 'rule-hot', scopeKey: `u-${s}`, fromMs: T0, toMs: T0 }], new Map())
        .get(`rule-hot\u0000u-${s}`)
        ?.get(T0);
    // Batch after batch, each a few ms apart: the current bucket is read throughout.
    for (let pass = 0; pass < 5; pass++) {
      for (let s = 0; s < scopes; s++) {
        nowMs += 1;
        expect(read(s)).toBe(s + 1);
      }
    }
    // Dropped at every read once past the budget, it was read whole again and again.
    expect(bucketReads.length).toBe(1);
    expect(counters.foldedCacheBytes).toBeGreaterThan(budget);
    // Once nobody reads it for a while, the budget applies again.
    nowMs += 10_000;
    read(0);
    expect(counters.foldedCacheBytes).toBeLessThanOrEqual(budget);
  });
});
