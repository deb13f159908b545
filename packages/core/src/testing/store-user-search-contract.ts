import { expect, it } from 'vitest';
import type { PricedEvent } from '../event/usage-event.js';
import type { Store } from '../ports/project-store.js';
import type { UserSearch } from '../query/usage-query.js';
import { CONTRACT_T0, makePricedEvent } from './store-fixtures.js';

const HOUR = 3_600_000;
const DAY = 86_400_000;

/** Ids chosen to trip naive implementations: LIKE wildcards, case, accents, astral characters. */
const TRICKY = [
  'ana',
  'anabel',
  'Ana',
  'andré',
  'an_x',
  'an%y',
  'an',
  'zoë-😀-1',
  'zoë-😀-2',
  'bob',
];

function traffic(): PricedEvent[] {
  const events: PricedEvent[] = [];
  TRICKY.forEach((userId, i) => {
    events.push(makePricedEvent({ userId, inputTokens: 100 + i * 10 }));
  });
  // Two users with the same tokens: ties go by id.
  events.push(makePricedEvent({ userId: 'tie-b', inputTokens: 77, outputTokens: 0 }));
  events.push(makePricedEvent({ userId: 'tie-a', inputTokens: 77, outputTokens: 0 }));
  // 150 users, the smallest far below any top 100.
  for (let i = 0; i < 150; i++) {
    events.push(
      makePricedEvent({
        userId: `user-${String(i).padStart(3, '0')}`,
        inputTokens: 10_000 - i * 50,
        timestampMs: CONTRACT_T0 - (i % 20) * HOUR,
      }),
    );
  }
  // Only denied: a call was counted, so the user is found.
  events.push(
    makePricedEvent({
      userId: 'anne-denied',
      status: 'denied',
      inputTokens: 0,
      outputTokens: 0,
      costNanoUsd: 0,
    }),
  );
  // Outside the range, and in another project: never found.
  events.push(makePricedEvent({ userId: 'anton-old', timestampMs: CONTRACT_T0 - 5 * DAY }));
  events.push(makePricedEvent({ userId: 'ana-elsewhere', projectId: 'p2' }));
  return events;
}

/** What a user search must answer: a recount of the events, most tokens first, ties by id. */
function recount(events: readonly PricedEvent[], s: UserSearch): [string, number][] {
  const totals = new Map<string, number>();
  for (const e of events) {
    if (e.projectId !== s.projectId || !e.userId.startsWith(s.prefix)) continue;
    const bucket = Math.floor(e.timestampMs / (s.resolution === 'day' ? DAY : HOUR));
    const bucketMs = bucket * (s.resolution === 'day' ? DAY : HOUR);
    if (bucketMs < s.fromMs || bucketMs >= s.toMs) continue;
    const tokens = e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
    totals.set(e.userId, (totals.get(e.userId) ?? 0) + tokens);
  }
  return [...totals.entries()]
    .sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, s.limit);
}

/**
 * `searchUsers`: every user of the project and range whose id starts with the prefix, not only
 * the top ones; exact, case-sensitive, no wildcards; ordered and limited like the API says.
 */
export function userSearchContract(store: () => Store, now: { nowMs: number }): void {
  it('searchUsers finds every user by id prefix, exactly and in order', async () => {
    const events = traffic();
    await store().applyBatch(events, now);
    const hourRange = { fromMs: CONTRACT_T0 - DAY, toMs: CONTRACT_T0 + DAY, resolution: 'hour' };
    const dayStart = Math.floor(CONTRACT_T0 / DAY) * DAY;
    const dayRange = { fromMs: dayStart - DAY, toMs: dayStart + DAY, resolution: 'day' };
    const cases: Array<[string, number, typeof hourRange | typeof dayRange]> = [
      ['an', 100, hourRange],
      ['an_', 100, hourRange],
      ['an%', 100, hourRange],
      ['A', 100, hourRange],
      ['andr', 100, dayRange],
      ['zoë-😀', 100, hourRange],
      ['user-', 1000, hourRange],
      ['user-1', 7, dayRange],
      ['user-149', 10, hourRange],
      ['tie-', 10, hourRange],
      ['nobody', 10, hourRange],
    ];
    for (const [prefix, limit, range] of cases) {
      const search = { projectId: 'p1', prefix, limit, ...range } as UserSearch;
      const rows = await store().searchUsers(search);
      const expected = recount(events, search);
      expect(
        rows.map((r) => [r.user, r.totalTokens]),
        `prefix ${prefix} (${range.resolution})`,
      ).toEqual(expected);
    }
    // The counts behind a few answers, spelled out.
    const names = async (prefix: string) =>
      (
        await store().searchUsers({
          projectId: 'p1',
          prefix,
          limit: 100,
          ...hourRange,
        } as UserSearch)
      ).map((r) => r.user);
    expect((await names('an')).sort()).toEqual(
      ['an', 'an%y', 'an_x', 'ana', 'anabel', 'andré', 'anne-denied'].sort(),
    );
    expect(await names('an_')).toEqual(['an_x']);
    expect(await names('A')).toEqual(['Ana']);
    expect(await names('tie-')).toEqual(['tie-a', 'tie-b']);
    expect(await names('user-149')).toEqual(['user-149']);
    expect(await names('ana-')).toEqual([]);
    // A search reads the project's own users only.
    const p2 = await store().searchUsers({
      ...hourRange,
      projectId: 'p2',
      prefix: 'ana',
      limit: 10,
    } as UserSearch);
    expect(p2.map((r) => r.user)).toEqual(['ana-elsewhere']);
  });
}
