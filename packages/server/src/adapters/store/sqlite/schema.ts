import {
  LATENCY_COLUMNS,
  MEASURE_COLUMNS,
  MEASURE_COLUMNS_ADDED,
  MEASURE_COLUMNS_V1,
} from '../sql-rows.js';

/**
 * SQLite schema, applied in order by `migrate()`. Each entry is one version; never edit a
 * released entry, append a new one.
 *
 * Layout choices (measured, see docs/benchmarks-history.md):
 * - A series is one (project, user, app, model, provider) combination, stored once in
 *   `series` and referred to by an integer id. Rollup rows are keyed (bucket, series id):
 *   small integer keys make each upsert about 3x cheaper than a key of five strings, and
 *   the file smaller. The same trick time-series databases use.
 * - Rollup keys start with the bucket: live ingest writes the newest buckets, so the pages
 *   it touches stay hot and the WAL stays small.
 * - `event_ids` is keyed (project, id): the dedupe claim is tenant-scoped, and the SDK's
 *   time-ordered UUIDv7 ids keep inserts at the right edge of the B-tree.
 */
// The measures of the first version (MEASURE_COLUMNS_V1): the tables of the released migrations
// are created with these; later measures are added by a migration of their own, below.
const MEASURES = `
  input_tokens INTEGER NOT NULL DEFAULT 0,
  output_tokens INTEGER NOT NULL DEFAULT 0,
  cache_read_tokens INTEGER NOT NULL DEFAULT 0,
  cache_write_tokens INTEGER NOT NULL DEFAULT 0,
  total_tokens INTEGER NOT NULL DEFAULT 0,
  requests INTEGER NOT NULL DEFAULT 0,
  errors INTEGER NOT NULL DEFAULT 0,
  cost_nano_usd INTEGER NOT NULL DEFAULT 0,
  unpriced_tokens INTEGER NOT NULL DEFAULT 0,
  unpriced_requests INTEGER NOT NULL DEFAULT 0,
  first_update_ms INTEGER NOT NULL,
  last_update_ms INTEGER NOT NULL`;

function rollupTable(name: string): string {
  return `CREATE TABLE ${name} (
  bucket_ms INTEGER NOT NULL,
  series_id INTEGER NOT NULL,${MEASURES},
  PRIMARY KEY (bucket_ms, series_id)
) WITHOUT ROWID;`;
}

function tagRollupTable(name: string): string {
  return `CREATE TABLE ${name} (
  bucket_ms INTEGER NOT NULL,
  tag_id INTEGER NOT NULL,
  series_id INTEGER NOT NULL,${MEASURES},
  PRIMARY KEY (bucket_ms, tag_id, series_id)
) WITHOUT ROWID;`;
}

/** A rollup family's dictionary: its table, id column and the key columns besides the project. */
interface Dictionary {
  table: string;
  id: string;
  keys: string[];
}

const SERIES: Dictionary = {
  table: 'series',
  id: 'series_id',
  keys: ['user_id', 'app_id', 'model_id', 'provider'],
};
const APP_SERIES: Dictionary = {
  table: 'app_series',
  id: 'app_series_id',
  keys: ['app_id', 'model_id', 'provider'],
};
const USER_SERIES: Dictionary = {
  table: 'user_series',
  id: 'user_series_id',
  keys: ['user_id', 'app_id'],
};
const USER_IDS: Dictionary = { table: 'user_ids', id: 'user_key_id', keys: ['user_id'] };
const MODEL_IDS: Dictionary = {
  table: 'model_ids',
  id: 'model_key_id',
  keys: ['model_id', 'provider'],
};
const APP_IDS: Dictionary = { table: 'app_ids', id: 'app_key_id', keys: ['app_id'] };

/**
 * Fills the dictionary of a new coarse rollup from a finer one's, then the rollup itself: each
 * row of `from` is mapped to the coarse series with the same key columns and the measures are
 * added up per (bucket, coarse series). `measures`: the columns both tables have when the migration
 * runs (a released migration keeps the first version's).
 */
function backfill(
  into: string,
  dict: Dictionary,
  from: string,
  fromDict: Dictionary,
  measures: readonly string[] = MEASURE_COLUMNS_V1,
): string {
  const match = ['project_id', ...dict.keys].map((k) => `c.${k} = s.${k}`).join(' AND ');
  return `INSERT INTO ${into} (bucket_ms, series_id, ${measures.join(', ')}, first_update_ms, last_update_ms)
  SELECT r.bucket_ms, c.${dict.id}, ${measures.map((m) => `SUM(r.${m})`).join(', ')}, MIN(r.first_update_ms), MAX(r.last_update_ms)
  FROM ${from} r JOIN ${fromDict.table} s ON s.${fromDict.id} = r.series_id JOIN ${dict.table} c ON ${match}
  GROUP BY r.bucket_ms, c.${dict.id};`;
}

/** The dictionary's rows: every distinct key of a finer dictionary. */
function fillDictionary(dict: Dictionary, fromDict: Dictionary): string {
  const columns = ['project_id', ...dict.keys].join(', ');
  return `INSERT INTO ${dict.table} (${columns}) SELECT DISTINCT ${columns} FROM ${fromDict.table};`;
}

/** Every rollup table of the released migrations (1 to 5). */
const ROLLUP_TABLES = [
  'rollup_minute',
  'rollup_hour',
  'rollup_day',
  'rollup_tag_hour',
  'rollup_tag_day',
  'rollup_app_hour',
  'rollup_app_day',
  'rollup_user_day',
  'rollup_per_user_hour',
  'rollup_per_user_day',
  'rollup_user_hour',
  'rollup_per_model_hour',
  'rollup_per_model_day',
  'rollup_per_app_hour',
  'rollup_per_app_day',
];

/**
 * The rollups that keep the latency histogram (LATENCY_COLUMNS): the hour and day ones a latency
 * query reads — full series (any filter), app × model, model alone, app alone. Not minutes, tags
 * or the per-user families: each histogram column is a cost on every upsert of its table.
 */
export const LATENCY_TABLES = [
  'rollup_hour',
  'rollup_day',
  'rollup_app_hour',
  'rollup_app_day',
  'rollup_per_model_hour',
  'rollup_per_model_day',
  'rollup_per_app_hour',
  'rollup_per_app_day',
] as const;

/** The full-series rollups indexed by (series_id, bucket_ms) too: the ones a user filter reads. */
export const SERIES_INDEXES = ['rollup_hour', 'rollup_day'] as const;

/** Adds measure columns to every rollup table: a change of the schema only, no row is rewritten. */
function addMeasures(
  columns: readonly string[],
  tables: readonly string[] = ROLLUP_TABLES,
): string {
  return tables
    .flatMap((t) =>
      columns.map((c) => `ALTER TABLE ${t} ADD COLUMN ${c} INTEGER NOT NULL DEFAULT 0;`),
    )
    .join('\n');
}

/** A rollup table created after the released measures were added: today's columns. */
function currentRollupTable(name: string): string {
  return `${rollupTable(name)}\n${addMeasures([...MEASURE_COLUMNS_ADDED, 'cost_usd'], [name])}`;
}

/**
 * The week rollups: 7-day buckets from the epoch (a Thursday, 00:00 UTC), a storage grid and not
 * a calendar week; a query reads a week row only when its 7 days are all in the range.
 */
export const WEEK_MS = 7 * 86_400_000;

/** Fills a week rollup from its day rollup: the days of each 7-day bucket added up. */
function backfillWeeks(into: string, from: string): string {
  const plain = MEASURE_COLUMNS.filter((m) => m !== 'cost_nano_usd');
  return `INSERT INTO ${into} (bucket_ms, series_id, ${plain.join(', ')}, cost_nano_usd, cost_usd, first_update_ms, last_update_ms)
  SELECT (bucket_ms / ${WEEK_MS}) * ${WEEK_MS} AS week, series_id, ${plain.map((m) => `SUM(${m})`).join(', ')},
    SUM(cost_nano_usd) % 1000000000, SUM(cost_usd) + SUM(cost_nano_usd) / 1000000000,
    MIN(first_update_ms), MAX(last_update_ms)
  FROM ${from} GROUP BY week, series_id;`;
}

export const MIGRATIONS: readonly string[] = [
  `
CREATE TABLE projects (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id),
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('ingest', 'admin', 'read')),
  app_id TEXT,
  name TEXT,
  created_at_ms INTEGER NOT NULL,
  revoked_at_ms INTEGER
);
CREATE INDEX api_keys_project ON api_keys(project_id);
CREATE TABLE price_overrides (
  project_id TEXT NOT NULL REFERENCES projects(id),
  provider TEXT NOT NULL,
  model_id TEXT NOT NULL,
  effective_from TEXT NOT NULL,
  input TEXT NOT NULL,
  output TEXT NOT NULL,
  cache_read TEXT,
  cache_write TEXT,
  PRIMARY KEY (project_id, provider, model_id, effective_from)
) WITHOUT ROWID;
CREATE TABLE event_ids (
  project_id TEXT NOT NULL,
  id TEXT NOT NULL,
  event_ms INTEGER NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (project_id, id)
) WITHOUT ROWID;
CREATE INDEX event_ids_by_time ON event_ids(event_ms);
CREATE TABLE conflicts (
  project_id TEXT NOT NULL,
  event_id TEXT NOT NULL,
  first_fingerprint TEXT NOT NULL,
  conflicting_fingerprint TEXT NOT NULL,
  seen_at_ms INTEGER NOT NULL
);
CREATE INDEX conflicts_by_project ON conflicts(project_id, seen_at_ms);
CREATE TABLE series (
  series_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  UNIQUE (project_id, user_id, app_id, model_id, provider)
);
CREATE INDEX series_by_project_user ON series(project_id, user_id);
CREATE TABLE tags (
  tag_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  tag_key TEXT NOT NULL,
  tag_value TEXT NOT NULL,
  UNIQUE (project_id, tag_key, tag_value)
);
${rollupTable('rollup_minute')}
${rollupTable('rollup_hour')}
${rollupTable('rollup_day')}
${tagRollupTable('rollup_tag_hour')}
${tagRollupTable('rollup_tag_day')}
`,
  `
CREATE TABLE rules (
  rule_id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL REFERENCES projects(id),
  definition TEXT NOT NULL,
  enabled INTEGER NOT NULL,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX rules_by_project ON rules(project_id);
CREATE TABLE rule_counters (
  rule_id TEXT NOT NULL,
  scope_key TEXT NOT NULL,
  bucket_start_ms INTEGER NOT NULL,
  value INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (rule_id, scope_key, bucket_start_ms)
) WITHOUT ROWID;
CREATE TABLE alerts (
  alert_id TEXT PRIMARY KEY,
  project_id TEXT NOT NULL,
  rule_id TEXT NOT NULL,
  scope_key TEXT NOT NULL,
  window_start_ms INTEGER NOT NULL,
  window_end_ms INTEGER NOT NULL,
  level_index INTEGER NOT NULL,
  threshold INTEGER NOT NULL,
  value INTEGER NOT NULL,
  late INTEGER NOT NULL,
  forecast INTEGER NOT NULL,
  fired_at_ms INTEGER NOT NULL,
  acknowledged_at_ms INTEGER,
  message TEXT NOT NULL,
  UNIQUE (rule_id, scope_key, window_start_ms, level_index)
) WITHOUT ROWID;
CREATE INDEX alerts_by_project ON alerts(project_id, fired_at_ms);
CREATE TABLE deliveries (
  delivery_id TEXT PRIMARY KEY,
  alert_id TEXT NOT NULL,
  project_id TEXT NOT NULL,
  channel_index INTEGER NOT NULL,
  channel TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms INTEGER NOT NULL,
  last_error TEXT,
  created_at_ms INTEGER NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  delivered_at_ms INTEGER
) WITHOUT ROWID;
CREATE INDEX deliveries_due ON deliveries(status, next_attempt_ms);
CREATE INDEX deliveries_by_alert ON deliveries(alert_id);
`,
  // Coarse rollups for long-range dashboard queries, back-filled from the full ones.
  `
CREATE TABLE app_series (
  app_series_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  UNIQUE (project_id, app_id, model_id, provider)
);
CREATE TABLE user_series (
  user_series_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  UNIQUE (project_id, user_id, app_id)
);
${rollupTable('rollup_app_hour')}
${rollupTable('rollup_app_day')}
${rollupTable('rollup_user_day')}
${fillDictionary(APP_SERIES, SERIES)}
${fillDictionary(USER_SERIES, SERIES)}
${backfill('rollup_app_hour', APP_SERIES, 'rollup_hour', SERIES)}
${backfill('rollup_app_day', APP_SERIES, 'rollup_day', SERIES)}
${backfill('rollup_user_day', USER_SERIES, 'rollup_day', SERIES)}
`,
  // Per-user rollups, so the per-user panels read one row per active user and bucket instead of
  // one per (user, app, model): a user-only rollup (top users, active users) per hour and day,
  // and the user × app rollup per hour too (the heat map), all back-filled from the full ones.
  `
CREATE TABLE user_ids (
  user_key_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  UNIQUE (project_id, user_id)
);
${rollupTable('rollup_per_user_hour')}
${rollupTable('rollup_per_user_day')}
${rollupTable('rollup_user_hour')}
${fillDictionary(USER_IDS, SERIES)}
${backfill('rollup_per_user_hour', USER_IDS, 'rollup_hour', SERIES)}
${backfill('rollup_per_user_day', USER_IDS, 'rollup_day', SERIES)}
${backfill('rollup_user_hour', USER_SERIES, 'rollup_hour', SERIES)}
`,
  // Per-model and per-app rollups for the charts over time: the totals and the stacked top
  // models or apps read ~20 or ~50 rows per hour instead of every app × model pair. Back-filled
  // from the app × model rollups.
  `
CREATE TABLE model_ids (
  model_key_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  model_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  UNIQUE (project_id, model_id, provider)
);
CREATE TABLE app_ids (
  app_key_id INTEGER PRIMARY KEY,
  project_id TEXT NOT NULL,
  app_id TEXT NOT NULL,
  UNIQUE (project_id, app_id)
);
${rollupTable('rollup_per_model_hour')}
${rollupTable('rollup_per_model_day')}
${rollupTable('rollup_per_app_hour')}
${rollupTable('rollup_per_app_day')}
${fillDictionary(MODEL_IDS, APP_SERIES)}
${fillDictionary(APP_IDS, APP_SERIES)}
${backfill('rollup_per_model_hour', MODEL_IDS, 'rollup_app_hour', APP_SERIES)}
${backfill('rollup_per_model_day', MODEL_IDS, 'rollup_app_day', APP_SERIES)}
${backfill('rollup_per_app_hour', APP_IDS, 'rollup_app_hour', APP_SERIES)}
${backfill('rollup_per_app_day', APP_IDS, 'rollup_app_day', APP_SERIES)}
`,
  `
CREATE TABLE event_log (
  seq INTEGER PRIMARY KEY,
  events TEXT NOT NULL
);
CREATE INDEX rule_counters_by_bucket ON rule_counters(rule_id, bucket_start_ms);
`,
  // Calls that returned no usage and calls a budget guard denied: counted apart from `requests`
  // and `errors` (see RollupMeasures). Older rows hold 0 for both, which is what they were.
  addMeasures(MEASURE_COLUMNS_ADDED),
  // Bumped by every write that leaves another connection's memory stale (a fold, a rule save
  // that rebuilds counters, a prune): see SqliteDatabase.syncWithOtherWriters.
  `
CREATE TABLE store_generation (id INTEGER PRIMARY KEY CHECK (id = 1), generation INTEGER NOT NULL);
INSERT INTO store_generation (id, generation) VALUES (1, 0);
`,
  // Money past 2^63 nano-USD: SQLite turns an integer sum that overflows into a float. Each
  // rollup row now holds its cost as whole USD (cost_usd) plus the nano-USD below one dollar
  // (cost_nano_usd < 10^9); neither can overflow (2^63 whole dollars), and reads add them up
  // as bigints. Rows already past 2^63 were floats before this version and stay approximate.
  splitCost(),
  // The UNIQUE (project_id, user_id, app_id, model_id, provider) index already serves lookups by
  // (project_id, user_id): this one only cost every new series a third b-tree insert.
  'DROP INDEX IF EXISTS series_by_project_user;',
  // Latency histograms (see LATENCY_BOUNDS_MS): a count per bucket. Rows written before hold 0
  // in each, an empty histogram: their calls' latencies were not kept.
  addMeasures(LATENCY_COLUMNS, LATENCY_TABLES),
  // One user's rows of the full rollups, series by series (see sqlite-usage-queries.ts): the
  // (bucket, series) key makes a user filter seek every bucket × every series of the user, most
  // of them misses. Built in ~6 s on a 10M-event file (11M rows).
  SERIES_INDEXES.map((t) => `CREATE INDEX ${t}_by_series ON ${t}(series_id, bucket_ms);`).join(
    '\n',
  ),
  // Per-user weeks: ranking users over 30 days read ~300k day rows at 10k active users (60 ms of
  // the query); whole weeks cut that to ~100k. Back-filled from the day rollup.
  `${currentRollupTable('rollup_per_user_week')}
${backfillWeeks('rollup_per_user_week', 'rollup_per_user_day')}`,
  // A fold in progress (see EventLogFold): a chunk's rollup rows are upserted over several
  // transactions, each recording here, per rollup table, the key of the last row it wrote, and
  // the transaction that deletes the chunk's log rows deletes these. A fold resumed after a
  // crash, or by another process, skips the rows at or before them.
  `
CREATE TABLE fold_progress (
  table_name TEXT PRIMARY KEY,
  up_to_seq INTEGER NOT NULL,
  bucket_ms INTEGER NOT NULL,
  tag_id INTEGER NOT NULL,
  series_id INTEGER NOT NULL
) WITHOUT ROWID;
`,
];

/** Moves each rollup row's cost into whole USD + a nano-USD remainder (see COST_SPLIT). */
function splitCost(): string {
  return ROLLUP_TABLES.map(
    (t) => `ALTER TABLE ${t} ADD COLUMN cost_usd INTEGER NOT NULL DEFAULT 0;
UPDATE ${t} SET cost_usd = CAST(cost_nano_usd AS INTEGER) / 1000000000, cost_nano_usd = CAST(cost_nano_usd AS INTEGER) % 1000000000 WHERE cost_nano_usd >= 1000000000;`,
  ).join('\n');
}
