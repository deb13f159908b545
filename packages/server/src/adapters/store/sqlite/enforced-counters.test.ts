import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  counterKeyOf,
  EventOutcome,
  type PricedEvent,
  type Rule,
  scopeKeyOf,
} from '@tokenwatch/core';
import { CONTRACT_T0, makePricedEvent, makeQuery, makeRule } from '@tokenwatch/core/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { seededRandom } from '../../../testing/tokenwatch-api.js';
import { SqliteStore } from './sqlite-store.js';
import { ThreadedSqliteStore } from './threaded-sqlite-store.js';

/**
 * `POST /v1/check` reads enforcing counters on the HTTP thread (`readEnforcedCounters`): the
 * folded rows from its own connection plus what each batch reported. Whatever the interleaving
 * with timed folds, forced folds (a usage query), rule deletions (which rewrite counters) and
 * another process writing the same file, the value after a batch's result equals every accepted
 * event of the scope key: nothing counted twice, nothing missing. The worker is the compiled one
 * (`npm test` builds first).
 */

const WORKER_URL = new URL(
  '../../../../dist/adapters/store/sqlite/sqlite-worker.js',
  import.meta.url,
);
const USERS = ['ana', 'ben', 'cy', 'dee'];
const NOW = CONTRACT_T0 + 10 * 60_000;

const dirs: string[] = [];
const open: (ThreadedSqliteStore | SqliteStore)[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close().catch(() => {});
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

async function setup(foldIntervalMs: number, foldChunkEvents?: number) {
  const dir = mkdtempSync(join(tmpdir(), 'tw-enforced-'));
  dirs.push(dir);
  const path = join(dir, 'tokenwatch.db');
  const store = new ThreadedSqliteStore(
    { path, foldIntervalMs, ...(foldChunkEvents === undefined ? {} : { foldChunkEvents }) },
    WORKER_URL,
  );
  open.push(store);
  await store.migrate();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
  const rule = makeRule({ scope: ['user'], enforce: true, levels: [{ value: 1e12 }] });
  await store.createRule(rule, CONTRACT_T0 + 60_000);
  return { path, store, rule };
}

function scopeOf(rule: Rule, userId: string): string {
  return scopeKeyOf(rule, makePricedEvent({ userId }));
}

function localValue(store: ThreadedSqliteStore, rule: Rule, userId: string): number | undefined {
  const scope = scopeOf(rule, userId);
  const rows = store.readEnforcedCounters(counterKeyOf(rule), 0, Number.MAX_SAFE_INTEGER, scope);
  return rows?.reduce((sum, r) => sum + r.value, 0);
}

function batchOf(next: () => number, sent: PricedEvent[]): PricedEvent[] {
  const batch: PricedEvent[] = [];
  for (let n = 1 + Math.floor(next() * 5); n > 0; n--) {
    const old = sent[Math.floor(next() * sent.length)];
    if (old && next() < 0.2)
      batch.push(old); // a redelivery: counted once
    else {
      const e = makePricedEvent({
        userId: USERS[Math.floor(next() * USERS.length)] as string,
        inputTokens: 1 + Math.floor(next() * 500),
        outputTokens: 0,
      });
      sent.push(e);
      batch.push(e);
    }
  }
  return batch;
}

describe('enforcing counters read on the HTTP thread', () => {
  // Seeds 4-6 fold in chunks of a few events: checks read while a fold is part-way through the
  // log (folded rows of a prefix of it, reports of the rest).
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`equal every accepted event after each batch, across folds and counter rewrites (seed ${seed})`, async () => {
      const next = seededRandom(seed);
      const { store, rule } = await setup(
        1 + Math.floor(next() * 20),
        seed > 3 ? 1 + Math.floor(next() * 8) : undefined,
      );
      const sent: PricedEvent[] = [];
      const others: Rule[] = [];
      const expected = new Map<string, number>();
      for (let step = 0; step < 120; step++) {
        const op = next();
        if (op < 0.08) await store.queryUsage(makeQuery({ fromMs: 0, toMs: NOW }));
        else if (op < 0.16) {
          // Saving or deleting another rule rewrites counters (a new store generation).
          const other = others.pop();
          if (other) await store.deleteRule('p1', other.id);
          else {
            const created = makeRule({ scope: ['app'] });
            await store.createRule(created, NOW);
            others.push(created);
          }
        } else if (op < 0.22) await new Promise((r) => setTimeout(r, Math.floor(next() * 25)));
        else {
          const batch = batchOf(next, sent);
          const result = await store.applyBatch(batch, { nowMs: NOW });
          for (const [i, outcome] of result.outcomes.entries()) {
            if (outcome !== EventOutcome.Accepted) continue;
            const e = batch[i] as PricedEvent;
            expected.set(e.userId, (expected.get(e.userId) ?? 0) + e.inputTokens);
          }
        }
        for (const user of USERS) {
          expect(localValue(store, rule, user), `${user} at step ${step}`).toBe(
            expected.get(user) ?? 0,
          );
        }
      }
      // The writer's own answer agrees.
      for (const user of USERS) {
        const scope = scopeOf(rule, user);
        const rows = await store.readCounters(
          counterKeyOf(rule),
          0,
          Number.MAX_SAFE_INTEGER,
          scope,
        );
        expect(rows.reduce((s, r) => s + r.value, 0)).toBe(expected.get(user) ?? 0);
      }
    });
  }

  it("sees another process's events once the writer's poll has folded them", async () => {
    const { path, store, rule } = await setup(3_600_000);
    await store.applyBatch([makePricedEvent({ userId: 'ana', inputTokens: 10, outputTokens: 0 })], {
      nowMs: NOW,
    });
    // A second connection (the CLI, another server) that never folds on its own.
    const cli = new SqliteStore({ path, foldIntervalMs: 3_600_000 });
    open.push(cli);
    await cli.migrate();
    await cli.applyBatch([makePricedEvent({ userId: 'ana', inputTokens: 7, outputTokens: 0 })], {
      nowMs: NOW,
    });
    const deadline = Date.now() + 5_000;
    while (localValue(store, rule, 'ana') !== 17 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 20));
    expect(localValue(store, rule, 'ana')).toBe(17);
    // And our own next batch is added to it, once.
    await store.applyBatch([makePricedEvent({ userId: 'ana', inputTokens: 5, outputTokens: 0 })], {
      nowMs: NOW,
    });
    expect(localValue(store, rule, 'ana')).toBe(22);
  });

  it('an in-memory file has no second connection: the writer answers', async () => {
    const store = new ThreadedSqliteStore({ path: ':memory:' }, WORKER_URL);
    open.push(store);
    await store.migrate();
    expect(store.readEnforcedCounters('k', 0, 1, 'ana')).toBeUndefined();
  });
});
