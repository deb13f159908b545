/**
 * Pruning by Scan: deletes the items past their retention (the work the table's TTL does on
 * AWS), for the store contract and for dynalite, which has no TTL (see DynamoDbStore.prune).
 */
import type { PruneOptions, PruneResult } from '@tokenwatch/core';
import { type DynamoIo, num } from './dynamodb-io.js';

const DAY_MS = 86_400_000;

/** Scans the whole table once and deletes what `options` says has expired. */
export async function pruneTable(io: DynamoIo, options: PruneOptions): Promise<PruneResult> {
  const minuteCutoff = options.nowMs - options.minuteRetentionMs;
  const eventCutoff = options.nowMs - options.dedupeRetentionMs;
  const historyCutoff = options.nowMs - options.historyRetentionMs;
  const result = {
    minuteRowsDeleted: 0,
    eventIdsDeleted: 0,
    alertsDeleted: 0,
    deliveriesDeleted: 0,
    conflictsDeleted: 0,
  };
  // Alerts go after the scan: only those none of whose deliveries is left.
  const oldAlerts: { pk: string; sk: string }[] = [];
  const alertsWithDeliveries = new Set<string>();
  await io.scan(
    {
      FilterExpression:
        '(begins_with(pk, :m) AND bucketMs < :mc) OR (begins_with(pk, :e) AND eventMs < :ec) OR (begins_with(pk, :c) AND bucketStartMs < :cc)' +
        ' OR (begins_with(pk, :x) AND seenAtMs < :hc) OR begins_with(pk, :d)' +
        ' OR (begins_with(pk, :a) AND windowEndMs < :hc AND firedAtMs < :hc)',
      ExpressionAttributeValues: {
        ':m': 'M#',
        ':mc': minuteCutoff,
        ':e': 'E#',
        ':ec': eventCutoff,
        ':c': 'C#',
        // Counter buckets of windows that can no longer change (as the other stores prune them).
        ':cc': eventCutoff - 32 * DAY_MS,
        ':x': 'X#',
        ':d': 'DLV#',
        ':a': 'A#',
        ':hc': historyCutoff,
      },
      ExpressionAttributeNames: { '#status': 'status' },
      ProjectionExpression: 'pk, sk, alertId, #status, updatedAtMs',
    },
    async (items) => {
      const doomed: { pk: string; sk: string }[] = [];
      for (const i of items) {
        const key = { pk: String(i.pk), sk: String(i.sk) };
        if (key.pk.startsWith('A#')) oldAlerts.push(key);
        else if (key.pk.startsWith('DLV#')) {
          const finished = i.status === 'delivered' || i.status === 'dead';
          if (finished && num(i.updatedAtMs) < historyCutoff) {
            doomed.push(key);
            result.deliveriesDeleted++;
          } else alertsWithDeliveries.add(String(i.alertId));
        } else {
          doomed.push(key);
          // A minute page (all of a batch's rows of one day, minute-pages.ts) counts as one:
          // it goes once its last minute is past the cutoff.
          if (key.pk.startsWith('M#')) result.minuteRowsDeleted++;
          else if (key.pk.startsWith('E#')) result.eventIdsDeleted++;
          else if (key.pk.startsWith('X#')) result.conflictsDeleted++;
        }
      }
      await io.batchDelete(doomed);
    },
  );
  const alerts = oldAlerts.filter((k) => !alertsWithDeliveries.has(k.sk));
  await io.batchDelete(alerts);
  result.alertsDeleted = alerts.length;
  return result;
}
