import { expect, it } from 'vitest';
import type { PricedEvent } from '../event/usage-event.js';
import type { Store } from '../ports/project-store.js';
import type { UsageQuery, UsageRow } from '../query/usage-query.js';
import { CONTRACT_T0, makePricedEvent, makeQuery } from './store-fixtures.js';

const DAY = 86_400_000;

function only(rows: UsageRow[]): UsageRow {
  expect(rows).toHaveLength(1);
  return rows[0] as UsageRow;
}

/**
 * The store contract's measures: unpriced tokens, calls without usage and denied calls, tags,
 * and money past 2^53 and 2^63 nano-USD. Part of `runStoreContract` (its projects p1 and p2 exist).
 */
export function measuresContract(storeOf: () => Store, now: { nowMs: number }): void {
  it('counts unpriced tokens and requests separately, never as $0 silently', async () => {
    await storeOf().applyBatch(
      [
        makePricedEvent({
          modelId: 'mystery-model',
          provider: 'unknown',
          priced: false,
          costNanoUsd: 0,
          inputTokens: 40,
          outputTokens: 2,
        }),
        makePricedEvent({ inputTokens: 10, outputTokens: 0, costNanoUsd: 5 }),
      ],
      now,
    );
    const rows = await storeOf().queryUsage(makeQuery({ groupBy: ['model'] }));
    expect(rows.map((r) => [r.model, r.unpricedTokens, r.unpricedRequests, r.costNanoUsd])).toEqual(
      [
        ['mystery-model', 42, 1, 0n],
        ['anthropic.claude-3-haiku-20240307-v1:0', 0, 0, 5n],
      ],
    );
  });

  it('counts calls without usage and denied calls apart, in every rollup and grouping', async () => {
    const zero = { inputTokens: 0, outputTokens: 0, costNanoUsd: 0 };
    await storeOf().applyBatch(
      [
        makePricedEvent({
          tags: { team: 'a' },
          inputTokens: 10,
          outputTokens: 5,
          costNanoUsd: 9,
        }),
        makePricedEvent({ tags: { team: 'a' }, status: 'no_usage', ...zero }),
        // what was known of an abandoned stream: the input tokens
        makePricedEvent({ status: 'no_usage', inputTokens: 4, outputTokens: 0, costNanoUsd: 2 }),
        makePricedEvent({ status: 'error', ...zero }),
        makePricedEvent({ tags: { team: 'a' }, status: 'denied', ...zero }),
        // a user whose only call was denied still has a row: blocked calls are visible
        makePricedEvent({
          userId: 'zed',
          appId: 'batch',
          status: 'denied',
          ...zero,
          priced: false,
        }),
      ],
      now,
    );
    const counts = (r: UsageRow) => [
      r.requests,
      r.errors,
      r.noUsageRequests,
      r.deniedRequests,
      r.totalTokens,
      r.unpricedRequests,
    ];
    for (const resolution of ['minute', 'hour', 'day'] as const) {
      expect(
        counts(only(await storeOf().queryUsage(makeQuery({ resolution })))),
        resolution,
      ).toEqual([4, 1, 2, 2, 19, 0]);
    }
    const groupings: UsageQuery['groupBy'][] = [
      ['user'],
      ['app'],
      ['model'],
      ['user', 'app'],
      ['app', 'model'],
      ['user', 'app', 'model', 'provider'],
    ];
    for (const groupBy of groupings) {
      for (const resolution of ['hour', 'day'] as const) {
        const rows = await storeOf().queryUsage(
          makeQuery({ groupBy, resolution, orderBy: 'requests', order: 'desc' }),
        );
        expect(rows.map(counts), `${groupBy.join(',')} ${resolution}`).toEqual(
          groupBy.length === 1 && groupBy[0] === 'model'
            ? [[4, 1, 2, 2, 19, 0]]
            : [
                [4, 1, 2, 1, 19, 0],
                [0, 0, 0, 1, 0, 0],
              ],
        );
        expect(await storeOf().countGroups(makeQuery({ groupBy, resolution }))).toBe(rows.length);
      }
    }
    const mostDenied = await storeOf().queryUsage(
      makeQuery({ groupBy: ['user'], orderBy: 'deniedRequests', order: 'desc', limit: 1 }),
    );
    expect(mostDenied.map((r) => [r.user, r.deniedRequests])).toEqual([['alice', 1]]);
    const leastNoUsage = await storeOf().queryUsage(
      makeQuery({ groupBy: ['user'], orderBy: 'noUsageRequests', order: 'asc', limit: 1 }),
    );
    expect(leastNoUsage.map((r) => r.user)).toEqual(['zed']);
    const byTeam = only(await storeOf().queryUsage(makeQuery({ groupBy: ['tag:team'] })));
    expect(counts(byTeam)).toEqual([2, 0, 1, 1, 15, 0]);
  });

  it('groups and filters by tag', async () => {
    await storeOf().applyBatch(
      [
        makePricedEvent({
          tags: { team: 'search', env: 'prod' },
          inputTokens: 1,
          outputTokens: 0,
        }),
        makePricedEvent({ tags: { team: 'search' }, inputTokens: 2, outputTokens: 0 }),
        makePricedEvent({ tags: { team: 'ads', env: 'prod' }, inputTokens: 4, outputTokens: 0 }),
        makePricedEvent({ inputTokens: 8, outputTokens: 0 }),
      ],
      now,
    );
    const byTeam = await storeOf().queryUsage(makeQuery({ groupBy: ['tag:team'] }));
    expect(byTeam.map((r) => [r.tag, r.totalTokens])).toEqual([
      [{ key: 'team', value: 'ads' }, 4],
      [{ key: 'team', value: 'search' }, 3],
    ]);
    const prod = only(
      await storeOf().queryUsage(makeQuery({ tagFilter: { key: 'env', value: 'prod' } })),
    );
    expect(prod.totalTokens).toBe(5);
    const prodDay = only(
      await storeOf().queryUsage(
        makeQuery({
          resolution: 'day',
          fromMs: CONTRACT_T0 - (CONTRACT_T0 % DAY),
          toMs: CONTRACT_T0 - (CONTRACT_T0 % DAY) + DAY,
          tagFilter: { key: 'env', value: 'prod' },
        }),
      ),
    );
    expect(prodDay.totalTokens).toBe(5);
  });

  it('sums costs past 2^53 nano-USD exactly', async () => {
    const big = 4_000_000_000_000_000; // $4M in nano-USD, below 2^53 on its own
    await storeOf().applyBatch(
      [
        makePricedEvent({ costNanoUsd: big }),
        makePricedEvent({ costNanoUsd: big }),
        makePricedEvent({ costNanoUsd: big + 1 }),
      ],
      now,
    );
    expect(only(await storeOf().queryUsage(makeQuery())).costNanoUsd).toBe(BigInt(big) * 3n + 1n);
  });

  it('sums costs past 2^63 nano-USD exactly, in one rollup row and across rows, and orders by them', async () => {
    // The most one event may cost (2^53 - 1 nano-USD, ≈ $9M); 1,100 of them in one minute
    // make one rollup row pass 2^63 (≈ 9.22e18), added batch by batch.
    const max = Number.MAX_SAFE_INTEGER;
    for (let batch = 0; batch < 11; batch++) {
      const events: PricedEvent[] = [];
      for (let i = 0; i < 100; i++) {
        events.push(makePricedEvent({ userId: 'alice', costNanoUsd: max }));
        // Bob's first event costs one nano-USD less: he ranks below Alice by exactly that.
        events.push(
          makePricedEvent({ userId: 'bob', costNanoUsd: batch + i === 0 ? max - 1 : max }),
        );
      }
      await storeOf().applyBatch(events, now);
    }
    const alice = BigInt(max) * 1100n;
    expect(alice).toBeGreaterThan(2n ** 63n);
    const byCost = async (order: 'asc' | 'desc') =>
      (await storeOf().queryUsage(makeQuery({ groupBy: ['user'], orderBy: 'costUsd', order }))).map(
        (r) => [r.user, r.costNanoUsd],
      );
    expect(await byCost('desc')).toEqual([
      ['alice', alice],
      ['bob', alice - 1n],
    ]);
    expect(await byCost('asc')).toEqual([
      ['bob', alice - 1n],
      ['alice', alice],
    ]);
    for (const resolution of ['minute', 'hour', 'day'] as const) {
      expect(only(await storeOf().queryUsage(makeQuery({ resolution }))).costNanoUsd).toBe(
        2n * alice - 1n,
      );
    }
  });
}
