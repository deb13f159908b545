import { type EventStatus, fingerprint, type PricedEvent, TokenwatchError } from '@tokenwatch/core';

/**
 * The wire format of one queued batch: `{"v":1,"e":[[…], …]}`, each event a positional array
 * (field names would double the size and the parse time). Version 1 positions:
 * projectId, id, timestampMs, userId, appId, modelId, provider, inputTokens, outputTokens,
 * cacheReadTokens, cacheWriteTokens, latencyMs|null, status code (below), tags|null,
 * costNanoUsd, 1 if priced else 0, fingerprint.
 */
export const BATCH_FORMAT_VERSION = 1;

/**
 * The status of an event as a number: 0 ok and 1 error since the first version, then the codes
 * added with the statuses (a worker older than a code would read it as ok: upgrade workers first).
 */
const STATUS_CODES: readonly EventStatus[] = ['ok', 'error', 'no_usage', 'denied'];

function row(e: PricedEvent): string {
  return JSON.stringify([
    e.projectId,
    e.id,
    e.timestampMs,
    e.userId,
    e.appId,
    e.modelId,
    e.provider,
    e.inputTokens,
    e.outputTokens,
    e.cacheReadTokens,
    e.cacheWriteTokens,
    e.latencyMs ?? null,
    STATUS_CODES.indexOf(e.status),
    e.tags ?? null,
    e.costNanoUsd,
    e.priced ? 1 : 0,
    e.fingerprint,
  ]);
}

const encoder = new TextEncoder();

/**
 * Encodes a batch into one or more messages of at most `maxBytes` each (a request of 1 MB may
 * exceed the server's max_payload once priced). Each part carries a message id derived from its
 * content: a retried request publishes the same ids, which JetStream drops inside its duplicate
 * window (and the store's id claim absorbs outside it).
 */
export function encodeBatch(
  events: readonly PricedEvent[],
  maxBytes: number,
): Array<{ msgId: string; data: Uint8Array; events: number }> {
  const parts: Array<{ msgId: string; data: Uint8Array; events: number }> = [];
  let rows: string[] = [];
  let size = 0;
  let keyText = '';
  const flush = () => {
    if (rows.length === 0) return;
    const data = encoder.encode(`{"v":${BATCH_FORMAT_VERSION},"e":[${rows.join(',')}]}`);
    parts.push({
      msgId: `b1-${fingerprint(keyText)}-${rows.length}-${fingerprint(`${rows.length}\u0000${keyText}\u0001`)}`,
      data,
      events: rows.length,
    });
    rows = [];
    size = 0;
    keyText = '';
  };
  for (const e of events) {
    const r = row(e);
    const bytes = Buffer.byteLength(r) + 1;
    if (rows.length > 0 && size + bytes + 16 > maxBytes) flush();
    if (bytes + 16 > maxBytes) {
      throw new TokenwatchError('payload_too_large', `event ${e.id} is too large for the queue`);
    }
    rows.push(r);
    size += bytes;
    keyText += `${e.projectId}\u0000${e.id}\u0000${e.fingerprint}\u0000`;
  }
  flush();
  return parts;
}

const decoder = new TextDecoder();

function finite(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`${field} is not a number`);
  return v;
}

function str(v: unknown, field: string): string {
  if (typeof v !== 'string') throw new Error(`${field} is not a string`);
  return v;
}
function int(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v))
    throw new Error(`${field} is not an integer`);
  return v;
}

function statusOf(v: unknown, i: number): EventStatus {
  const status = STATUS_CODES[int(v, `event ${i} status`)];
  if (status === undefined) throw new Error(`event ${i}: status ${String(v)} is unknown`);
  return status;
}

/** Decodes a message; throws a plain Error (the message is poison) when it is not a valid batch. */
export function decodeBatch(data: Uint8Array): PricedEvent[] {
  const parsed = JSON.parse(decoder.decode(data)) as { v?: unknown; e?: unknown };
  if (parsed === null || typeof parsed !== 'object' || parsed.v !== BATCH_FORMAT_VERSION)
    throw new Error(`unknown batch format ${JSON.stringify((parsed as { v?: unknown })?.v)}`);
  if (!Array.isArray(parsed.e)) throw new Error('batch has no event list');
  return parsed.e.map((raw: unknown, i: number): PricedEvent => {
    if (!Array.isArray(raw) || raw.length !== 17) throw new Error(`event ${i} is malformed`);
    const tags = raw[13];
    if (tags !== null && (typeof tags !== 'object' || Array.isArray(tags)))
      throw new Error(`event ${i}: tags are malformed`);
    let tagMap: Record<string, string> | undefined;
    if (tags !== null) {
      tagMap = Object.create(null) as Record<string, string>;
      for (const [k, v] of Object.entries(tags as Record<string, unknown>))
        tagMap[k] = str(v, `event ${i} tag ${k}`);
    }
    return {
      projectId: str(raw[0], `event ${i} projectId`),
      id: str(raw[1], `event ${i} id`),
      timestampMs: int(raw[2], `event ${i} timestamp`),
      userId: str(raw[3], `event ${i} userId`),
      appId: str(raw[4], `event ${i} appId`),
      modelId: str(raw[5], `event ${i} modelId`),
      provider: str(raw[6], `event ${i} provider`),
      inputTokens: int(raw[7], `event ${i} inputTokens`),
      outputTokens: int(raw[8], `event ${i} outputTokens`),
      cacheReadTokens: int(raw[9], `event ${i} cacheReadTokens`),
      cacheWriteTokens: int(raw[10], `event ${i} cacheWriteTokens`),
      latencyMs: raw[11] === null ? undefined : finite(raw[11], `event ${i} latencyMs`),
      status: statusOf(raw[12], i),
      tags: tagMap,
      costNanoUsd: int(raw[14], `event ${i} costNanoUsd`),
      priced: raw[15] === 1,
      fingerprint: str(raw[16], `event ${i} fingerprint`),
    };
  });
}
