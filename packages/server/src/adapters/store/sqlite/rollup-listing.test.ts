import type { PricedEvent } from '@tokenwatch/core';
import { makePricedEvent } from '@tokenwatch/core/testing';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { PlannedRow } from './rollup-plan.js';
import { RollupWriter } from './rollup-writer.js';
import { SqliteDatabase } from './sqlite-database.js';

/**
 * A fold chunk's rows are listed in pieces (`finishPiece`), between which the writer runs the
 * appends that arrived: the pieces must list exactly the rows of the listing in one go. Deriving
 * the coarse rollups adds to the plan's own maps, so a listing that started over (or a `finish`
 * after some pieces) would add them twice.
 */
const T0 = Date.UTC(2026, 0, 1);
let database: SqliteDatabase;

beforeEach(() => {
  database = new SqliteDatabase({ path: ':memory:' });
  database.migrate();
  database.projects().createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
});
afterEach(() => database.close());

/** 3,000 users over 4 hours and 2 days, with tags: about 40k rows over the rollups. */
function traffic(): PricedEvent[] {
  return Array.from({ length: 12_000 }, (_, i) =>
    makePricedEvent({
      userId: `user-${i % 3_000}`,
      appId: `app-${i % 7}`,
      modelId: `model-${i % 5}`,
      timestampMs: T0 + (i % 4) * 3_600_000 + (i % 2) * 86_400_000,
      inputTokens: 1 + (i % 101),
      outputTokens: i % 17,
      tags: { team: `team-${i % 9}` },
    }),
  );
}

/** A row as text: which rollup, its key and its measures. */
function describeRow(row: PlannedRow): string {
  const { bucketMs, tagId, seriesId } = row.acc;
  return `${row.name} ${bucketMs} ${tagId} ${seriesId} ${row.acc.params(0).join(',')}`;
}

function planOf(writer: RollupWriter, events: PricedEvent[]) {
  const plan = writer.newPlan();
  database.db.transaction(() => writer.accumulate(plan, events, 0, events.length))();
  writer.committed();
  return plan;
}

describe('listing a plan’s rows in pieces', () => {
  it('lists exactly the rows of the listing in one go, over many pieces', () => {
    const writer = new RollupWriter(database.db);
    const events = traffic();
    const whole = writer.finish(planOf(writer, events)).map(describeRow);

    const plan = planOf(writer, events);
    let pieces = 0;
    let rows: PlannedRow[] | undefined;
    do {
      rows = writer.finishPiece(plan);
      pieces++;
    } while (rows === undefined);

    expect(pieces).toBeGreaterThan(10);
    expect(rows.map(describeRow)).toEqual(whole);
    expect(whole.length).toBeGreaterThan(20_000);
    // Listed once: later calls hand back the same rows.
    expect(writer.finishPiece(plan)).toBe(rows);
    expect(writer.finish(plan)).toBe(rows);
  });

  it('a finish after some pieces goes on with the same listing instead of deriving again', () => {
    const writer = new RollupWriter(database.db);
    const events = traffic();
    const whole = writer.finish(planOf(writer, events)).map(describeRow);

    const plan = planOf(writer, events);
    for (let i = 0; i < 5; i++) expect(writer.finishPiece(plan)).toBeUndefined();

    expect(writer.finish(plan).map(describeRow)).toEqual(whole);
  });
});
