import { LATENCY_COLUMNS, MEASURE_COLUMNS_ADDED } from '../sql-rows.js';

/**
 * PostgreSQL schema, applied in order by `migrate()` under an advisory lock (several workers may
 * start at once). Each entry is one version; never edit a released entry, append a new one.
 *
 * Same layout as the SQLite store (see sqlite/schema.ts): a series dictionary with integer ids,
 * rollups keyed (bucket, series), a tenant-scoped dedupe key. Text keys use the "C" collation:
 * byte order like SQLite (the contract's tie-breaks), and cheaper comparisons than a locale.
 */
// The measures of the first version (MEASURE_COLUMNS_V1); later ones come by their own migration.
const MEASURES = `
  input_tokens BIGINT NOT NULL DEFAULT 0,
  output_tokens BIGINT NOT NULL DEFAULT 0,
  cache_read_tokens BIGINT NOT NULL DEFAULT 0,
  cache_write_tokens BIGINT NOT NULL DEFAULT 0,
  total_tokens BIGINT NOT NULL DEFAULT 0,
  requests BIGINT NOT NULL DEFAULT 0,
  errors BIGINT NOT NULL DEFAULT 0,
  cost_nano_usd BIGINT NOT NULL DEFAULT 0,
  unpriced_tokens BIGINT NOT NULL DEFAULT 0,
  unpriced_requests BIGINT NOT NULL DEFAULT 0,
  first_update_ms BIGINT NOT NULL,
  last_update_ms BIGINT NOT NULL`;

function rollupTable(name: string): string {
  return `CREATE TABLE ${name} (
  bucket_ms BIGINT NOT NULL,
  series_id INTEGER NOT NULL,${MEASURES},
  PRIMARY KEY (bucket_ms, series_id)
);`;
}

function tagRollupTable(name: string): string {
  return `CREATE TABLE ${name} (
  bucket_ms BIGINT NOT NULL,
  tag_id INTEGER NOT NULL,
  series_id INTEGER NOT NULL,${MEASURES},
  PRIMARY KEY (bucket_ms, tag_id, series_id)
);`;
}

const T = 'TEXT COLLATE "C"';

/** Every rollup table of the first version. */
const ROLLUP_TABLES = [
  'rollup_minute',
  'rollup_hour',
  'rollup_day',
  'rollup_tag_hour',
  'rollup_tag_day',
];

/** The rollups that keep the latency histogram (LATENCY_COLUMNS): hour and day, no tags. */
export const PG_LATENCY_TABLES = ['rollup_hour', 'rollup_day'] as const;

/** Adds measure columns to every rollup table (a constant default: no row is rewritten). */
function addMeasures(
  columns: readonly string[],
  tables: readonly string[] = ROLLUP_TABLES,
): string {
  return tables
    .map(
      (t) =>
        `ALTER TABLE ${t} ${columns.map((c) => `ADD COLUMN ${c} BIGINT NOT NULL DEFAULT 0`).join(', ')};`,
    )
    .join('\n');
}

export const PG_MIGRATIONS: readonly string[] = [
  `
CREATE TABLE projects (
  id ${T} PRIMARY KEY,
  name TEXT NOT NULL,
  created_at_ms BIGINT NOT NULL
);
CREATE TABLE api_keys (
  id ${T} PRIMARY KEY,
  project_id ${T} NOT NULL REFERENCES projects(id),
  hash ${T} NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('ingest', 'admin', 'read')),
  app_id TEXT,
  name TEXT,
  created_at_ms BIGINT NOT NULL,
  revoked_at_ms BIGINT
);
CREATE INDEX api_keys_project ON api_keys(project_id);
CREATE TABLE price_overrides (
  project_id ${T} NOT NULL REFERENCES projects(id),
  provider ${T} NOT NULL,
  model_id ${T} NOT NULL,
  effective_from ${T} NOT NULL,
  input TEXT NOT NULL,
  output TEXT NOT NULL,
  cache_read TEXT,
  cache_write TEXT,
  PRIMARY KEY (project_id, provider, model_id, effective_from)
);
CREATE TABLE event_ids (
  project_id ${T} NOT NULL,
  id ${T} NOT NULL,
  event_ms BIGINT NOT NULL,
  fingerprint TEXT NOT NULL,
  PRIMARY KEY (project_id, id)
);
CREATE INDEX event_ids_by_time ON event_ids(event_ms);
CREATE TABLE conflicts (
  seq BIGSERIAL PRIMARY KEY,
  project_id ${T} NOT NULL,
  event_id TEXT NOT NULL,
  first_fingerprint TEXT NOT NULL,
  conflicting_fingerprint TEXT NOT NULL,
  seen_at_ms BIGINT NOT NULL
);
CREATE INDEX conflicts_by_project ON conflicts(project_id, seen_at_ms);
CREATE TABLE series (
  series_id SERIAL PRIMARY KEY,
  project_id ${T} NOT NULL,
  user_id ${T} NOT NULL,
  app_id ${T} NOT NULL,
  model_id ${T} NOT NULL,
  provider ${T} NOT NULL,
  UNIQUE (project_id, user_id, app_id, model_id, provider)
);
CREATE TABLE tags (
  tag_id SERIAL PRIMARY KEY,
  project_id ${T} NOT NULL,
  tag_key ${T} NOT NULL,
  tag_value ${T} NOT NULL,
  UNIQUE (project_id, tag_key, tag_value)
);
${rollupTable('rollup_minute')}
${rollupTable('rollup_hour')}
${rollupTable('rollup_day')}
${tagRollupTable('rollup_tag_hour')}
${tagRollupTable('rollup_tag_day')}
CREATE TABLE rules (
  rule_id ${T} PRIMARY KEY,
  project_id ${T} NOT NULL REFERENCES projects(id),
  definition TEXT NOT NULL,
  enabled BOOLEAN NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL
);
CREATE INDEX rules_by_project ON rules(project_id);
CREATE TABLE rule_counters (
  rule_id ${T} NOT NULL,
  scope_key ${T} NOT NULL,
  bucket_start_ms BIGINT NOT NULL,
  value BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  PRIMARY KEY (rule_id, scope_key, bucket_start_ms)
);
CREATE TABLE alerts (
  alert_id ${T} PRIMARY KEY,
  project_id ${T} NOT NULL,
  rule_id ${T} NOT NULL,
  scope_key ${T} NOT NULL,
  window_start_ms BIGINT NOT NULL,
  window_end_ms BIGINT NOT NULL,
  level_index INTEGER NOT NULL,
  threshold BIGINT NOT NULL,
  value BIGINT NOT NULL,
  late BOOLEAN NOT NULL,
  forecast BOOLEAN NOT NULL,
  fired_at_ms BIGINT NOT NULL,
  acknowledged_at_ms BIGINT,
  message TEXT NOT NULL,
  UNIQUE (rule_id, scope_key, window_start_ms, level_index)
);
CREATE INDEX alerts_by_project ON alerts(project_id, fired_at_ms);
CREATE INDEX alerts_by_scope_level ON alerts(rule_id, scope_key, level_index, window_end_ms);
CREATE TABLE deliveries (
  delivery_id ${T} PRIMARY KEY,
  alert_id ${T} NOT NULL REFERENCES alerts(alert_id),
  project_id ${T} NOT NULL,
  channel_index INTEGER NOT NULL,
  channel TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'delivered', 'dead')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_ms BIGINT NOT NULL,
  last_error TEXT,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  delivered_at_ms BIGINT
);
CREATE INDEX deliveries_due ON deliveries(next_attempt_ms) WHERE status IN ('pending', 'sending');
CREATE INDEX deliveries_by_project ON deliveries(project_id, created_at_ms);
CREATE INDEX deliveries_by_alert ON deliveries(alert_id);
CREATE TABLE poison_messages (
  seq BIGSERIAL PRIMARY KEY,
  stream TEXT NOT NULL,
  stream_seq BIGINT NOT NULL,
  msg_id TEXT,
  deliveries INTEGER NOT NULL,
  reason TEXT NOT NULL,
  payload_head TEXT NOT NULL,
  seen_at_ms BIGINT NOT NULL,
  UNIQUE (stream, stream_seq)
);
`,
  `
CREATE TABLE rule_epochs (
  project_id ${T} PRIMARY KEY,
  epoch BIGINT NOT NULL
);
`,
  // Calls that returned no usage and calls a budget guard denied (see RollupMeasures).
  addMeasures(MEASURE_COLUMNS_ADDED),
  // Money past 2^63 nano-USD: a BIGINT sum overflows ("bigint out of range") and the batch
  // would fail for ever. NUMERIC is exact at any size; the cost is never a float.
  ROLLUP_TABLES.map((t) => `ALTER TABLE ${t} ALTER COLUMN cost_nano_usd TYPE NUMERIC(40, 0);`).join(
    '\n',
  ),
  // Latency histograms (see LATENCY_BOUNDS_MS): a count per bucket. A constant default, so no
  // row is rewritten; rows written before read as an empty histogram.
  addMeasures(LATENCY_COLUMNS, PG_LATENCY_TABLES),
];
