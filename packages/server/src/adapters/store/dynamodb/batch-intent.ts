import { gunzipSync, gzipSync } from 'node:zlib';
import { type CompiledRule, type PricedEvent, type Rule, TokenwatchError } from '@tokenwatch/core';
import { type DynamoIo, mapLimit, num } from './dynamodb-io.js';
import { batchIntentKey, TTL_ATTR, ttlSeconds } from './keys.js';

const DAY_MS = 86_400_000;
/** Bytes of the intent (gzip) per item: it is spread over as many items as it needs. */
export const MAX_INTENT_PART_BYTES = 300 * 1024;
/** Batch records (intent, done mark) are kept this long: longer than SQS keeps a message. */
export const BATCH_RECORD_TTL_MS = 15 * DAY_MS;

export function encodeIntent(
  events: readonly PricedEvent[],
  rules: readonly CompiledRule[],
): Buffer {
  return gzipSync(JSON.stringify({ events, rules: rules.map((r) => r.rule) }));
}

/**
 * Step 1 of a batch record (see batch-apply.ts): its events and rules. The gzip is cut into
 * parts of at most `partBytes` (the item limit is 400 KB): part 0 is `B#<id>/I` with the number
 * of parts, the others `B#<id>/I<n>`, written first so that an `I` item always has its parts.
 * Intents written before parts existed are one `I` item without a part count.
 */
export async function writeIntent(
  io: DynamoIo,
  batchId: string,
  payload: Buffer,
  count: number,
  nowMs: number,
  partBytes: number,
): Promise<void> {
  const parts: Buffer[] = [];
  for (let at = 0; at < payload.byteLength || parts.length === 0; at += partBytes)
    parts.push(payload.subarray(at, at + partBytes));
  const expiresAt = ttlSeconds(nowMs + BATCH_RECORD_TTL_MS);
  await mapLimit(parts.slice(1), io.concurrency, (part, i) =>
    io.put({
      ...batchIntentKey(batchId, i + 1),
      type: 'batch-part',
      events: part,
      [TTL_ATTR]: expiresAt,
    }),
  );
  await io.put({
    ...batchIntentKey(batchId),
    type: 'batch',
    nowMs,
    events: parts[0],
    parts: parts.length,
    count,
    [TTL_ATTR]: expiresAt,
  });
}

/** A batch record's intent, or undefined when it expired (long after the batch was done). */
export async function readIntent(
  io: DynamoIo,
  batchId: string,
): Promise<{ nowMs: number; decoded: { events: PricedEvent[]; rules: Rule[] } } | undefined> {
  const intent = await io.get(batchIntentKey(batchId));
  if (!intent) return undefined;
  const partCount = intent.parts === undefined ? 1 : num(intent.parts);
  const rest = await mapLimit(
    Array.from({ length: partCount - 1 }, (_, i) => i + 1),
    io.concurrency,
    async (n) => {
      const part = await io.get(batchIntentKey(batchId, n));
      if (!part)
        throw new TokenwatchError('internal', `batch ${batchId}: intent part ${n} is missing`);
      return part.events as Uint8Array;
    },
  );
  const raw = Buffer.concat([intent.events as Uint8Array, ...rest]);
  const decoded = JSON.parse(gunzipSync(raw).toString('utf8')) as {
    events: PricedEvent[];
    rules: Rule[];
  };
  return { nowMs: num(intent.nowMs), decoded };
}
