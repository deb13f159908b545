/*
 * The locks a batch transaction takes on PostgreSQL besides its row writes, kept off the
 * cluster's shared lock table where their number would grow with the batch: that table holds
 * max_locks_per_transaction × max_connections entries for every session of the cluster (6,400
 * by default), and a batch that fills it fails, with every other session, "out of shared memory".
 */

import { fnv1a } from '../../../util/fnv1a.js';

/**
 * The bucket of a rolling scope's lock row in rule_counters: before any real minute, so that no
 * read of a time range sees it (and its value stays 0); pruned with the oldest counters and
 * upserted again by the next batch that touches the scope.
 */
export const ROLLING_LOCK_BUCKET = -1;

/** Rule lock slots per schema: a batch takes at most this many advisory locks, whatever its projects. */
export const RULE_LOCK_SLOTS = 256;

/** FNV-1a of the project id, modulo the slots: stable across processes and versions. */
export function ruleLockSlot(projectId: string): number {
  return fnv1a(projectId) % RULE_LOCK_SLOTS;
}
