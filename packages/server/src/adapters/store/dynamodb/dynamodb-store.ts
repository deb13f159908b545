import {
  type ApiKeyRecord,
  type ApplyOptions,
  type ApplyResult,
  type ConflictRecord,
  EventOutcome,
  type ModelPriceEntry,
  type PricedEvent,
  type Project,
  type PruneOptions,
  type PruneResult,
  type RuleCounter,
  type Store,
  TokenwatchError,
  type UsageQuery,
  type UsageRow,
  type UserSearch,
  userSearchQuery,
} from '@tokenwatch/core';
import { RuleStoreDelegate } from '../rule-store-delegate.js';
import { BatchApplier } from './batch-apply.js';
import { type DynamoDbStoreOptions, DynamoIo, type Item, mapLimit, num } from './dynamodb-io.js';
import { pruneTable } from './dynamodb-prune.js';
import { DynamoRules } from './dynamodb-rules.js';
import { migrateTable } from './dynamodb-table.js';
import { queryUsage } from './dynamodb-usage.js';
import { UpdateBuilder } from './expression.js';
import { conflictPk, esc, keyHashKey, PROJECTS_PK, pad, projectPk, TTL_ATTR } from './keys.js';
import { RuleLock } from './rule-lock.js';

export type { DynamoDbStoreOptions } from './dynamodb-io.js';
export { tableDefinition } from './dynamodb-table.js';

const DAY_MS = 86_400_000;

function priceSk(provider: string, modelId: string, effectiveFrom: string): string {
  return `PRICE#${esc(provider)}#${esc(modelId)}#${esc(effectiveFrom)}`;
}

function keyFromItem(item: Item): ApiKeyRecord {
  return {
    id: String(item.id),
    projectId: String(item.projectId),
    hash: String(item.hash),
    prefix: String(item.prefix),
    role: item.role as ApiKeyRecord['role'],
    appId: typeof item.appId === 'string' ? item.appId : undefined,
    name: typeof item.name === 'string' ? item.name : undefined,
    createdAtMs: num(item.createdAtMs),
    revokedAtMs: item.revokedAtMs === undefined ? undefined : num(item.revokedAtMs),
  };
}

/**
 * The store on Amazon DynamoDB: one table (see keys.ts and deploy/aws/README.md), on-demand.
 * Exactly-once counting with conditional writes only (see batch-apply.ts), so it runs
 * unchanged on DynamoDB and on dynalite.
 */
export class DynamoDbStore extends RuleStoreDelegate implements Store {
  private readonly io: DynamoIo;
  protected readonly rules: DynamoRules;
  private readonly applier: BatchApplier;

  constructor(
    private readonly options: DynamoDbStoreOptions & {
      /** Minute rollups expire (TTL) this long after their minute. Default 7 days. */
      minuteRetentionMs?: number;
      /** Event ids expire (TTL) this long after their event time. Default 36 days. */
      dedupeRetentionMs?: number;
      /**
       * How long a batch's lease on its projects' rule locks lasts (see RuleLock): longer than
       * the ingest function's timeout. Default 120 s.
       */
      ruleLeaseMs?: number;
      /** How long saving a rule and starting a batch wait for each other. Default 30 s. */
      ruleLockWaitMs?: number;
      /** Events per batch record (see batch-apply.ts). Default 20,000: an SQS invocation. */
      maxRecordEvents?: number;
      /** Bytes of a batch's intent per item. Default 300 KiB (the item limit is 400 KB). */
      maxIntentPartBytes?: number;
    },
  ) {
    super();
    this.io = new DynamoIo(options);
    const leaseMs = options.ruleLeaseMs ?? 120_000;
    const lock = new RuleLock(
      this.io,
      { leaseMs, waitMs: options.ruleLockWaitMs ?? 30_000, now: Date.now },
      async (batchId) => {
        await this.applier.rollForward(batchId);
      },
    );
    this.rules = new DynamoRules(this.io, lock);
    this.applier = new BatchApplier(
      this.io,
      {
        minuteRetentionMs: options.minuteRetentionMs ?? 7 * DAY_MS,
        dedupeRetentionMs: options.dedupeRetentionMs ?? 36 * DAY_MS,
        leaseMs,
        ...(options.maxRecordEvents === undefined
          ? {}
          : { maxRecordEvents: options.maxRecordEvents }),
        ...(options.maxIntentPartBytes === undefined
          ? {}
          : { maxIntentPartBytes: options.maxIntentPartBytes }),
      },
      lock,
      (projectIds, versions) => this.rules.enabledRules(projectIds, versions),
    );
  }

  /**
   * Creates the table with its indexes and TTL when it does not exist (local use; on AWS the
   * CDK stack creates it and the functions' role may not create tables).
   */
  async migrate(): Promise<void> {
    return migrateTable(this.io, this.options.tableName, this.rules);
  }

  async applyBatch(events: readonly PricedEvent[], options: ApplyOptions): Promise<ApplyResult> {
    const outcomes: EventOutcome[] = new Array(events.length);
    const first = new Map<string, number>();
    const unique: PricedEvent[] = [];
    const uniqueIndex: number[] = [];
    events.forEach((e, i) => {
      const k = `${e.projectId}\u0000${e.id}`;
      if (first.has(k)) return;
      first.set(k, unique.length);
      unique.push(e);
      uniqueIndex.push(i);
    });
    const applied = await this.applier.apply(unique, options.nowMs);
    const conflicts: ConflictRecord[] = [];
    events.forEach((e, i) => {
      const u = first.get(`${e.projectId}\u0000${e.id}`) as number;
      const r = applied.results[u] as { outcome: EventOutcome; ownerFingerprint: string };
      let outcome: EventOutcome;
      if (uniqueIndex[u] === i) outcome = r.outcome;
      else
        outcome =
          r.ownerFingerprint === e.fingerprint ? EventOutcome.Duplicate : EventOutcome.Conflict;
      outcomes[i] = outcome;
      if (outcome === EventOutcome.Conflict)
        conflicts.push({
          projectId: e.projectId,
          eventId: e.id,
          firstFingerprint: r.ownerFingerprint,
          conflictingFingerprint: e.fingerprint,
          seenAtMs: options.nowMs,
        });
    });
    await mapLimit(conflicts, this.io.concurrency, (c, i) =>
      this.io.put({
        pk: conflictPk(c.projectId),
        sk: `${pad(c.seenAtMs)}#${String(i).padStart(6, '0')}#${c.eventId}`,
        type: 'conflict',
        ...c,
        [TTL_ATTR]: Math.floor((c.seenAtMs + 90 * DAY_MS) / 1000),
      }),
    );
    // The last value of each enforced counter wins (a later chunk saw the higher total).
    const enforced = new Map<string, RuleCounter>();
    for (const c of applied.enforcedCounters)
      enforced.set(`${c.ruleId}\u0000${c.scopeKey}\u0000${c.bucketStartMs}`, c);
    return {
      accepted: outcomes.filter((o) => o === EventOutcome.Accepted).length,
      duplicates: outcomes.filter((o) => o === EventOutcome.Duplicate).length,
      conflicts: conflicts.length,
      outcomes,
      alerts: applied.alerts,
      enforcedCounters: [...enforced.values()],
    };
  }

  queryUsage(query: UsageQuery): Promise<UsageRow[]> {
    return queryUsage(this.io, query);
  }
  searchUsers(search: UserSearch): Promise<UsageRow[]> {
    return queryUsage(this.io, userSearchQuery(search));
  }

  async countGroups(query: UsageQuery): Promise<number> {
    // The rollups are grouped in memory here anyway: count them without the limit.
    return (await queryUsage(this.io, { ...query, limit: Number.MAX_SAFE_INTEGER })).length;
  }

  async listConflicts(projectId: string, limit: number): Promise<ConflictRecord[]> {
    const items = await this.io.query({
      KeyConditionExpression: 'pk = :pk',
      ExpressionAttributeValues: { ':pk': conflictPk(projectId) },
      ScanIndexForward: false,
      Limit: limit,
    });
    return items.slice(0, limit).map((i) => ({
      projectId: String(i.projectId),
      eventId: String(i.eventId),
      firstFingerprint: String(i.firstFingerprint),
      conflictingFingerprint: String(i.conflictingFingerprint),
      seenAtMs: num(i.seenAtMs),
    }));
  }

  /**
   * On AWS the table's TTL removes expired minute rollups and event ids at no write cost, and
   * nothing needs to call this. It exists for the contract and for dynalite (no TTL): a Scan of
   * the whole table, which costs read units for every item — do not schedule it on AWS.
   */
  async prune(options: PruneOptions): Promise<PruneResult> {
    return pruneTable(this.io, options);
  }

  async createProject(project: Project): Promise<void> {
    const created = await this.io.put(
      { pk: PROJECTS_PK, sk: project.id, type: 'project', ...project },
      { ConditionExpression: 'attribute_not_exists(pk)' },
    );
    if (!created) throw new TokenwatchError('conflict', `project "${project.id}" already exists`);
  }

  async getProject(id: string): Promise<Project | undefined> {
    const item = await this.io.get({ pk: PROJECTS_PK, sk: id });
    return item
      ? { id: String(item.id), name: String(item.name), createdAtMs: num(item.createdAtMs) }
      : undefined;
  }

  async listProjects(): Promise<Project[]> {
    const items = await this.io.partition(PROJECTS_PK);
    return items
      .map((i) => ({ id: String(i.id), name: String(i.name), createdAtMs: num(i.createdAtMs) }))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  private async requireProject(projectId: string): Promise<void> {
    if (!(await this.getProject(projectId)))
      throw new TokenwatchError('not_found', `project "${projectId}" does not exist`);
  }

  /**
   * The key record lives under its hash (the lookup of every request); an index item under
   * the project (`P#<project>/KEY#<id>`) lists and revokes it. Both are conditional puts; a
   * failed second put removes the first.
   */
  async createKey(key: ApiKeyRecord): Promise<void> {
    await this.requireProject(key.projectId);
    const conflict = () =>
      new TokenwatchError('conflict', 'a key with this id or hash already exists');
    const record = { ...keyHashKey(key.hash), type: 'key', ...key };
    if (!(await this.io.put(record, { ConditionExpression: 'attribute_not_exists(pk)' })))
      throw conflict();
    const indexed = await this.io.put(
      { pk: projectPk(key.projectId), sk: `KEY#${key.id}`, type: 'key-ref', hash: key.hash },
      { ConditionExpression: 'attribute_not_exists(pk)' },
    );
    if (!indexed) {
      await this.io.delete(keyHashKey(key.hash));
      throw conflict();
    }
  }

  async findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined> {
    const item = await this.io.get(keyHashKey(hash));
    return item ? keyFromItem(item) : undefined;
  }

  async listKeys(projectId: string): Promise<ApiKeyRecord[]> {
    const refs = await this.io.partition(projectPk(projectId), 'KEY#');
    const items = await this.io.batchGet(refs.map((r) => keyHashKey(String(r.hash))));
    return items
      .map(keyFromItem)
      .filter((k) => k.projectId === projectId)
      .sort((a, b) => a.createdAtMs - b.createdAtMs || (a.id < b.id ? -1 : 1));
  }

  async revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean> {
    const ref = await this.io.get({ pk: projectPk(projectId), sk: `KEY#${keyId}` });
    if (!ref) return false;
    const u = new UpdateBuilder().setIfNotExists('revokedAtMs', nowMs);
    u.condition('attribute_exists(pk)');
    return (await this.io.update(keyHashKey(String(ref.hash)), u.build())) !== undefined;
  }

  async listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]> {
    const items = await this.io.partition(projectPk(projectId), 'PRICE#');
    return items
      .map((i) => ({
        sortKey: `${i.provider}\u0000${i.modelId}\u0000${i.effectiveFrom}`,
        entry: JSON.parse(String(i.entry)) as ModelPriceEntry,
      }))
      .sort((a, b) => (a.sortKey < b.sortKey ? -1 : 1))
      .map((x) => x.entry);
  }

  async putPriceOverride(projectId: string, entry: ModelPriceEntry): Promise<void> {
    await this.requireProject(projectId);
    await this.io.put({
      pk: projectPk(projectId),
      sk: priceSk(entry.provider, entry.modelId, entry.effectiveFrom),
      type: 'price',
      provider: entry.provider,
      modelId: entry.modelId,
      effectiveFrom: entry.effectiveFrom,
      entry: JSON.stringify(entry),
    });
  }

  async deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean> {
    return this.io.delete(
      { pk: projectPk(projectId), sk: priceSk(provider, modelId, effectiveFrom) },
      'attribute_exists(pk)',
    );
  }

  /** Test hook: see DynamoIo.failFromWrite. */
  injectWriteFailure(fromWrite: number | undefined): void {
    this.io.injectWriteFailure(fromWrite);
  }

  async close(): Promise<void> {
    this.io.close();
  }
}
