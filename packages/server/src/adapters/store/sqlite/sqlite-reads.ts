import type { ConflictRecord, UsageQuery, UsageRow } from '@tokenwatch/core';
import type Database from 'better-sqlite3';
import { measuresFromRow } from '../sql-rows.js';
import { storeError } from './sqlite-errors.js';
import { compileUsageQuery } from './sqlite-usage-queries.js';
import { immediate } from './write-lock.js';

/**
 * What the SQLite store reads and trims outside the write path: usage rows (the caller folds
 * the event log first, so they hold every event that got its 202), conflicts, and the pruning of
 * finished history.
 */

interface RawUsageRow {
  [column: string]: unknown;
}

function toNumber(value: unknown): number {
  if (typeof value === 'bigint') return Number(value);
  return typeof value === 'number' ? value : 0;
}

export function queryUsageRows(db: Database.Database, q: UsageQuery): UsageRow[] {
  const compiled = compileUsageQuery(q, { coarseRollups: true, splitCost: true });
  try {
    const rows = db
      .prepare(compiled.sql)
      .safeIntegers(true)
      .all(...compiled.params) as RawUsageRow[];
    return rows.map((r) => {
      const row: UsageRow = measuresFromRow(r, toNumber);
      compiled.dimensions.forEach((dim, i) => {
        const value = String(r[`d${i}`]);
        if (dim.startsWith('tag:')) row.tag = { key: dim.slice(4), value };
        else row[dim as 'user' | 'app' | 'model' | 'provider'] = value;
      });
      if (q.interval) row.bucketMs = toNumber(r.bucket);
      return row;
    });
  } catch (err) {
    throw storeError(err, 'queryUsage');
  }
}

export function countUsageGroups(db: Database.Database, q: UsageQuery): number {
  const compiled = compileUsageQuery(q, { coarseRollups: true, splitCost: true, shape: 'count' });
  try {
    return db
      .prepare(compiled.sql)
      .pluck()
      .get(...compiled.params) as number;
  } catch (err) {
    throw storeError(err, 'countGroups');
  }
}

export function conflictsOf(
  db: Database.Database,
  projectId: string,
  limit: number,
): ConflictRecord[] {
  const rows = db
    .prepare(
      'SELECT event_id, first_fingerprint, conflicting_fingerprint, seen_at_ms FROM conflicts WHERE project_id = ? ORDER BY seen_at_ms DESC, rowid DESC LIMIT ?',
    )
    .all(projectId, limit) as {
    event_id: string;
    first_fingerprint: string;
    conflicting_fingerprint: string;
    seen_at_ms: number;
  }[];
  return rows.map((r) => ({
    projectId,
    eventId: r.event_id,
    firstFingerprint: r.first_fingerprint,
    conflictingFingerprint: r.conflicting_fingerprint,
    seenAtMs: r.seen_at_ms,
  }));
}

/** Finished deliveries, then alerts with none left, and conflicts, from before `cutoffMs`. */
export function pruneHistory(db: Database.Database, cutoffMs: number) {
  return immediate(db, () => {
    const deliveries = db
      .prepare("DELETE FROM deliveries WHERE status IN ('delivered', 'dead') AND updated_at_ms < ?")
      .run(cutoffMs);
    // NOT IN: SQLite indexes the subquery once (deliveries has no index on alert_id).
    const alerts = db
      .prepare(
        'DELETE FROM alerts WHERE window_end_ms < ? AND fired_at_ms < ? AND alert_id NOT IN (SELECT alert_id FROM deliveries)',
      )
      .run(cutoffMs, cutoffMs);
    const conflicts = db.prepare('DELETE FROM conflicts WHERE seen_at_ms < ?').run(cutoffMs);
    return {
      alertsDeleted: alerts.changes,
      deliveriesDeleted: deliveries.changes,
      conflictsDeleted: conflicts.changes,
    };
  });
}
