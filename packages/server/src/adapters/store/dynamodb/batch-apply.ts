import { randomBytes } from 'node:crypto';
import {
  type CompiledRule,
  compileRule,
  EventOutcome,
  type NewAlert,
  type PricedEvent,
  type RuleCounter,
  TokenwatchError,
} from '@tokenwatch/core';
import {
  BATCH_RECORD_TTL_MS,
  encodeIntent,
  MAX_INTENT_PART_BYTES,
  readIntent,
  writeIntent,
} from './batch-intent.js';
import { applyOwned, cleanupMarks } from './batch-updates.js';
import { type DynamoIo, mapLimit } from './dynamodb-io.js';
import { batchDoneKey, eventKey, TTL_ATTR, ttlSeconds } from './keys.js';
import type { RuleLock } from './rule-lock.js';

/**
 * Events per batch record. One record takes a whole SQS invocation of the stack (its batch size
 * times the events per message; Lambda's 6 MB payload keeps it below this), so the invocation's
 * rollup and counter rows are each written once, with the sum of all its events.
 */
export const MAX_RECORD_EVENTS = 20_000;

export interface ApplySettings {
  /** Events per batch record (default MAX_RECORD_EVENTS; tests lower it). */
  maxRecordEvents?: number;
  /** Intent bytes per item (default MAX_INTENT_PART_BYTES; tests lower it). */
  maxIntentPartBytes?: number;
  minuteRetentionMs: number;
  dedupeRetentionMs: number;
  /** The rule lease's length (see RuleLock): a batch that has held its lease half of it retries. */
  leaseMs: number;
}

/** What one batch record did to its events. */
interface EventResult {
  outcome: EventOutcome;
  /** Fingerprint of the payload that owns the id. */
  ownerFingerprint: string;
}

export interface ChunkResult {
  results: EventResult[];
  alerts: NewAlert[];
  enforcedCounters: RuleCounter[];
}

/** Time-ordered, 14 characters: ms in base 36 and 40 random bits. */
export function newBatchId(nowMs: number): string {
  const random = randomBytes(5).readUIntBE(0, 5).toString(36).padStart(8, '0');
  return `${Math.max(0, nowMs).toString(36).padStart(9, '0')}${random}`;
}

/**
 * Exactly-once application without multi-item transactions (dynalite, like many DynamoDB
 * emulators, has no TransactWriteItems; and a batch can touch far more than 100 items):
 *
 * 1. INTENT: the batch record `B#<id>/I` (and `I1`, `I2`… when large, batch-intent.ts) stores
 *    the batch's events and rules (gzip).
 * 2. CLAIM: each event id is claimed with a conditional put naming the batch. Claims are
 *    immutable: the first batch that claims an id owns it for good.
 * 3. APPLY: the owned events' minute rows are put as pages keyed by the batch, each only if
 *    absent (minute-pages.ts); every other rollup item and rule counter they touch is updated
 *    once, with the sum of the record's events, with `ADD` (batch-updates.ts),
 *    conditional on the item not carrying this batch's mark (`tx_<id>`), which the same update
 *    sets. Counters keep their new value in the mark, so a repeat learns the value it produced.
 *    Alerts and their deliveries are conditional puts on deterministic ids.
 * 4. DONE: `B#<id>/D` is written.
 *
 * Every step is idempotent, so a batch that crashed half-way is completed ("rolled forward")
 * by whoever meets one of its claims while it is not done: the SQS redelivery of the same
 * message, a retry of the call, or a concurrent consumer. The roll-forward re-claims the
 * intent's events on the batch's behalf and repeats steps 3–4 with the batch's own id, rules
 * and clock, so it adds exactly what the batch had not added yet.
 *
 * Marks are removed from an item once they are many and their batches are done (a strongly
 * consistent read of the done records), so items stay small.
 */
export class BatchApplier {
  constructor(
    private readonly io: DynamoIo,
    private readonly settings: ApplySettings,
    private readonly lock: RuleLock,
    /**
     * The enabled rules of these projects, as they are now (read under the batch's lease, whose
     * rules versions let a cache skip the read: see RuleLock).
     */
    private readonly rulesOf: (
      projectIds: readonly string[],
      versions: ReadonlyMap<string, string | undefined>,
    ) => Promise<CompiledRule[]>,
  ) {}

  /** Splits unique events into batch records of bounded size and applies them in order. */
  chunks(events: readonly PricedEvent[]): PricedEvent[][] {
    const out: PricedEvent[][] = [];
    const size = this.settings.maxRecordEvents ?? MAX_RECORD_EVENTS;
    for (let i = 0; i < events.length; i += size) out.push(events.slice(i, i + size));
    return out;
  }

  /** Applies unique events (no repeated id) as one or more batch records. */
  async apply(events: readonly PricedEvent[], nowMs: number): Promise<ChunkResult> {
    const all: ChunkResult = { results: [], alerts: [], enforcedCounters: [] };
    for (const chunk of this.chunks(events)) {
      const r = await this.applyChunk(chunk, nowMs);
      all.results.push(...r.results);
      all.alerts.push(...r.alerts);
      all.enforcedCounters.push(...r.enforcedCounters);
    }
    return all;
  }

  /**
   * One batch record, under a shared lease on its projects' rule locks (see RuleLock): the rules
   * it counts into are read after the lease is taken, and the lease is given back when the batch
   * is done (or crashed: a rule writer then completes the batch from its intent).
   */
  private async applyChunk(events: readonly PricedEvent[], nowMs: number): Promise<ChunkResult> {
    const batchId = newBatchId(nowMs);
    const projects = [...new Set(events.map((e) => e.projectId))].sort();
    const leasedAt = Date.now();
    const versions = await this.lock.acquireShared(projects, batchId);
    try {
      const rules = await this.rulesOf(projects, versions);
      const payload = encodeIntent(events, rules);
      // A rule writer may take a lease that lived this long for a crashed batch's: start over.
      if (Date.now() - leasedAt > this.settings.leaseMs / 2)
        throw new TokenwatchError('unavailable', 'the rule lease ran out before the batch began', {
          retryable: true,
          retryAfterSeconds: 1,
        });
      await writeIntent(
        this.io,
        batchId,
        payload,
        events.length,
        nowMs,
        this.settings.maxIntentPartBytes ?? MAX_INTENT_PART_BYTES,
      );
      return await this.run(batchId, events, rules, nowMs, true);
    } finally {
      // Best effort: a lease left behind only makes the next rule save wait for it to expire.
      await this.lock.releaseShared(projects, batchId).catch(() => {});
    }
  }

  /**
   * Steps 2–4 for one batch record. `first` is false when rolling another batch forward: then
   * batches met on the way are not rolled forward in turn (they are not this call's concern).
   */
  private async run(
    batchId: string,
    events: readonly PricedEvent[],
    rules: readonly CompiledRule[],
    nowMs: number,
    first: boolean,
  ): Promise<ChunkResult> {
    const io = this.io;
    const claims = await mapLimit(events, io.concurrency, async (e) => {
      const key = eventKey(e.projectId, e.id);
      const claimed = await io.put(
        {
          ...key,
          type: 'event',
          batch: batchId,
          fingerprint: e.fingerprint,
          eventMs: e.timestampMs,
          [TTL_ATTR]: ttlSeconds(e.timestampMs + this.settings.dedupeRetentionMs),
        },
        { ConditionExpression: 'attribute_not_exists(pk)' },
      );
      if (claimed) return { owner: batchId, fingerprint: e.fingerprint };
      const existing = (await io.get(key)) ?? {};
      return { owner: String(existing.batch), fingerprint: String(existing.fingerprint) };
    });
    const owned = events.filter((_, i) => claims[i]?.owner === batchId);

    const alerts: NewAlert[] = [];
    const enforcedCounters: RuleCounter[] = [];
    // Ids owned by a batch that is not done: complete that batch before answering, so an event
    // reported as a duplicate is already counted.
    const rolledForward = new Set<string>();
    if (first) {
      const others = [
        ...new Set(claims.filter((c) => c.owner !== batchId).map((c) => c.owner)),
      ].filter((b) => b !== 'undefined');
      for (const other of others) {
        if (await io.get(batchDoneKey(other))) continue;
        const r = await this.rollForward(other);
        if (r) {
          rolledForward.add(other);
          alerts.push(...r.alerts);
          enforcedCounters.push(...r.enforcedCounters);
        }
      }
    }

    const applied = await applyOwned(
      io,
      batchId,
      owned,
      rules,
      nowMs,
      this.settings.minuteRetentionMs,
    );
    alerts.push(...applied.alerts);
    enforcedCounters.push(...applied.enforcedCounters);
    await io.put({
      ...batchDoneKey(batchId),
      type: 'batch-done',
      doneAtMs: nowMs,
      [TTL_ATTR]: ttlSeconds(nowMs + BATCH_RECORD_TTL_MS),
    });
    await cleanupMarks(io, applied.crowded).catch(() => {
      // Best effort: the marks are removed by a later batch that touches the item.
    });

    const results = events.map((e, i): EventResult => {
      const c = claims[i] as { owner: string; fingerprint: string };
      if (c.owner === batchId)
        return { outcome: EventOutcome.Accepted, ownerFingerprint: c.fingerprint };
      if (c.fingerprint !== e.fingerprint)
        return { outcome: EventOutcome.Conflict, ownerFingerprint: c.fingerprint };
      // Counted by the roll-forward this call made: no earlier call reported it as accepted.
      if (rolledForward.has(c.owner))
        return { outcome: EventOutcome.Accepted, ownerFingerprint: c.fingerprint };
      return { outcome: EventOutcome.Duplicate, ownerFingerprint: c.fingerprint };
    });
    return { results, alerts, enforcedCounters };
  }

  /** Completes a batch that is not done (crashed, or still running elsewhere). */
  async rollForward(batchId: string): Promise<ChunkResult | undefined> {
    const intent = await readIntent(this.io, batchId);
    if (!intent) return undefined; // expired long after it was done
    const { decoded } = intent;
    const events = decoded.events.map((e) => ({
      ...e,
      tags: e.tags ?? undefined,
      latencyMs: e.latencyMs ?? undefined,
    }));
    return this.run(batchId, events, decoded.rules.map(compileRule), intent.nowMs, false);
  }
}
