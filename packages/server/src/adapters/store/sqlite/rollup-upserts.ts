import type Database from 'better-sqlite3';
import { LATENCY_COLUMNS, MEASURE_COLUMNS } from '../sql-rows.js';
import type { Acc } from './rollup-acc.js';
import { LATENCY_TABLES } from './schema.js';

type Statement = Database.Statement<unknown[], unknown>;

/** The rollup tables by the names RollupWriter gives its accumulators. */
export const ROLLUP_TABLES: Record<string, string> = {
  minute: 'rollup_minute',
  hour: 'rollup_hour',
  day: 'rollup_day',
  appHour: 'rollup_app_hour',
  appDay: 'rollup_app_day',
  userHour: 'rollup_user_hour',
  userDay: 'rollup_user_day',
  perUserHour: 'rollup_per_user_hour',
  perUserDay: 'rollup_per_user_day',
  perUserWeek: 'rollup_per_user_week',
  perModelHour: 'rollup_per_model_hour',
  perModelDay: 'rollup_per_model_day',
  perAppHour: 'rollup_per_app_hour',
  perAppDay: 'rollup_per_app_day',
  tagHour: 'rollup_tag_hour',
  tagDay: 'rollup_tag_day',
};
/** The rollups keyed (bucket, tag, series), by those names. */
export const TAGGED_ROLLUPS: ReadonlySet<string> = new Set(['tagHour', 'tagDay']);
const KEEPS_LATENCY = new Set<string>(LATENCY_TABLES);

/** An upsert adding a row's measures (and `latency` histogram columns) to rollup `table`. */
function prepareUpsert(
  db: Database.Database,
  table: string,
  tagged: boolean,
  latency: readonly string[],
): Statement {
  const key = `bucket_ms, ${tagged ? 'tag_id, ' : ''}series_id`;
  const columns = [...MEASURE_COLUMNS, 'cost_usd', 'first_update_ms', 'last_update_ms', ...latency];
  // The cost is whole USD + nano-USD below a dollar (see splitCost); a carry moves from one
  // to the other. SET expressions all read the row as it was before the update.
  const set = MEASURE_COLUMNS.map((m) =>
    m === 'cost_nano_usd'
      ? 'cost_nano_usd = (cost_nano_usd + excluded.cost_nano_usd) % 1000000000'
      : `${m} = ${m} + excluded.${m}`,
  );
  set.push(
    'cost_usd = cost_usd + excluded.cost_usd + (cost_nano_usd + excluded.cost_nano_usd) / 1000000000',
  );
  set.push(...latency.map((c) => `${c} = ${c} + excluded.${c}`));
  return db.prepare(
    `INSERT INTO ${table} (${key}, ${columns.join(', ')})
     VALUES (${[...key.split(', '), ...columns].map(() => '?').join(', ')})
     ON CONFLICT (${key}) DO UPDATE SET
       ${set.join(',\n       ')},
       last_update_ms = excluded.last_update_ms`,
  );
}

/**
 * One rollup's upserts, each prepared the first time a row needs it: without histogram columns,
 * with all twenty (a row whose calls had latencies in several buckets), or with the one bucket a
 * row's calls all fell in (a long tail of users makes most full-series rows one call). Prepared
 * up front, a writer's were 184 statements at every open (a server start, each CLI command, each
 * test's store): a third of the CPU of a test that opens stores over and over
 * (sqlite-other-writers.test.ts).
 */
export class RollupUpserts {
  /** Whether the table keeps the latency histogram (LATENCY_TABLES). */
  private readonly keepsLatency: boolean;
  private plain: Statement | undefined;
  private allLatency: Statement | undefined;
  private readonly oneLatency: (Statement | undefined)[] = [];

  constructor(
    private readonly db: Database.Database,
    private readonly table: string,
    private readonly tagged: boolean,
  ) {
    this.keepsLatency = KEEPS_LATENCY.has(table);
  }

  /** Adds a row of an untagged rollup, with its histogram where the table keeps one. */
  add(a: Acc, nowMs: number): void {
    if (this.keepsLatency && a.latency !== undefined) {
      this.allLatency ??= prepareUpsert(this.db, this.table, this.tagged, LATENCY_COLUMNS);
      this.allLatency.run(a.bucketMs, a.seriesId, ...a.params(nowMs), ...a.latency);
    } else if (this.keepsLatency && a.soleCount > 0) {
      this.oneLatency[a.soleBucket] ??= prepareUpsert(this.db, this.table, this.tagged, [
        LATENCY_COLUMNS[a.soleBucket] as string,
      ]);
      this.oneLatency[a.soleBucket]?.run(a.bucketMs, a.seriesId, ...a.params(nowMs), a.soleCount);
    } else this.withoutLatency().run(a.bucketMs, a.seriesId, ...a.params(nowMs));
  }

  /** The upsert binding no histogram column (tag rollups bind their tag id with it). */
  withoutLatency(): Statement {
    this.plain ??= prepareUpsert(this.db, this.table, this.tagged, []);
    return this.plain;
  }
}

/** Every rollup's upserts (none prepared yet), by the names RollupWriter.write uses. */
export function rollupUpserts(db: Database.Database): Record<string, RollupUpserts> {
  return Object.fromEntries(
    Object.entries(ROLLUP_TABLES).map(([name, table]) => [
      name,
      new RollupUpserts(db, table, TAGGED_ROLLUPS.has(name)),
    ]),
  );
}
