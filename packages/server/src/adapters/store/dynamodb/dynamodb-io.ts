import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  type DynamoDBClientConfig,
} from '@aws-sdk/client-dynamodb';
import {
  BatchGetCommand,
  BatchWriteCommand,
  DeleteCommand,
  DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  type PutCommandInput,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  type ScanCommandInput,
  UpdateCommand,
  type UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { TokenwatchError } from '@tokenwatch/core';
import type { ItemKey } from './keys.js';

export type Item = Record<string, unknown>;

export interface DynamoDbStoreOptions {
  tableName: string;
  /** Region; defaults to the SDK's (AWS_REGION in Lambda). */
  region?: string | undefined;
  /** Endpoint override, e.g. http://127.0.0.1:4567 for dynalite. */
  endpoint?: string | undefined;
  /** Static credentials (local endpoints); the SDK's default chain otherwise. */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** Parallel requests per batch (the SDK keeps up to 50 sockets). Default 16. */
  concurrency?: number | undefined;
  /**
   * The SDK's transport (default: its Node HTTP handler). Tests give dynalite's in-process
   * handler (testing/dynalite.ts); every command, its marshalling and middleware are unchanged.
   */
  requestHandler?: DynamoDBClientConfig['requestHandler'];
}

const RETRYABLE_NAMES = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'TransactionConflictException',
  'LimitExceededException',
  'TimeoutError',
  'AbortError',
]);

/** Maps an SDK error to the store contract's errors: `unavailable` (retryable) or `internal`. */
export function storeError(err: unknown, what: string): TokenwatchError {
  if (err instanceof TokenwatchError) return err;
  const e = err as {
    name?: string;
    message?: string;
    code?: string;
    $fault?: string;
    $retryable?: unknown;
    $metadata?: unknown;
  };
  const retryable =
    (e?.name !== undefined && RETRYABLE_NAMES.has(e.name)) ||
    e?.$fault === 'server' ||
    e?.$retryable !== undefined ||
    // No response at all: a network failure (ECONNREFUSED, ECONNRESET, DNS).
    (e?.$metadata === undefined && typeof e?.code === 'string');
  return new TokenwatchError(
    retryable ? 'unavailable' : 'internal',
    `DynamoDB ${what} failed: ${e?.name ?? 'Error'}: ${e?.message ?? String(err)}`,
    { retryable, cause: err },
  );
}

export function isConditionFailed(err: unknown): boolean {
  return (
    err instanceof ConditionalCheckFailedException ||
    (err as { name?: string })?.name === 'ConditionalCheckFailedException'
  );
}

/** A DynamoDB number as the document client returns it with `wrapNumbers` (exact strings). */
export function num(value: unknown): number {
  if (value === undefined || value === null) return 0;
  if (typeof value === 'object' && 'value' in (value as object))
    return Number((value as { value: string }).value);
  return Number(value);
}
export function big(value: unknown): bigint {
  if (value === undefined || value === null) return 0n;
  if (typeof value === 'object' && 'value' in (value as object))
    return BigInt((value as { value: string }).value);
  return BigInt(value as number | string);
}
export function optNum(value: unknown): number | undefined {
  return value === undefined || value === null ? undefined : num(value);
}

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** The document client and the few access patterns the store uses, with errors mapped. */
export class DynamoIo {
  readonly doc: DynamoDBDocumentClient;
  readonly raw: DynamoDBClient;
  readonly table: string;
  readonly concurrency: number;
  /**
   * Test hook, like MemoryStore.failNextApply: the write with this ordinal (1-based, counted
   * from when it is set) fails as a lost connection would, and so does every write after it,
   * until it is cleared. Used to crash a batch at every step and check the roll-forward.
   */
  private failFromWrite: number | undefined;
  private writes = 0;

  injectWriteFailure(fromWrite: number | undefined): void {
    this.failFromWrite = fromWrite;
    this.writes = 0;
  }

  private beforeWrite(): void {
    if (this.failFromWrite === undefined) return;
    this.writes++;
    if (this.writes >= this.failFromWrite)
      throw new TokenwatchError('unavailable', `injected failure at write ${this.writes}`);
  }

  constructor(options: DynamoDbStoreOptions) {
    const config: DynamoDBClientConfig = { maxAttempts: 4 };
    if (options.region !== undefined) config.region = options.region;
    if (options.endpoint !== undefined) config.endpoint = options.endpoint;
    if (options.credentials !== undefined) config.credentials = options.credentials;
    if (options.requestHandler !== undefined) config.requestHandler = options.requestHandler;
    this.raw = new DynamoDBClient(config);
    this.doc = DynamoDBDocumentClient.from(this.raw, {
      marshallOptions: { removeUndefinedValues: true },
      // Exact numbers: costs in nano-USD pass 2^53.
      unmarshallOptions: { wrapNumbers: true },
    });
    this.table = options.tableName;
    this.concurrency = options.concurrency ?? 16;
  }

  async get(key: ItemKey, consistent = true): Promise<Item | undefined> {
    try {
      const out = await this.doc.send(
        new GetCommand({ TableName: this.table, Key: key, ConsistentRead: consistent }),
      );
      return out.Item;
    } catch (err) {
      throw storeError(err, 'GetItem');
    }
  }

  /** Put; false when the condition failed. */
  async put(item: Item, condition?: Omit<PutCommandInput, 'TableName' | 'Item'>): Promise<boolean> {
    this.beforeWrite();
    try {
      await this.doc.send(new PutCommand({ TableName: this.table, Item: item, ...condition }));
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw storeError(err, 'PutItem');
    }
  }

  /** Update; the new item (ALL_NEW), or undefined when the condition failed. */
  async update(
    key: ItemKey,
    input: Omit<UpdateCommandInput, 'TableName' | 'Key'>,
  ): Promise<Item | undefined> {
    this.beforeWrite();
    try {
      const out = await this.doc.send(
        new UpdateCommand({ TableName: this.table, Key: key, ReturnValues: 'ALL_NEW', ...input }),
      );
      return out.Attributes ?? {};
    } catch (err) {
      if (isConditionFailed(err)) return undefined;
      throw storeError(err, 'UpdateItem');
    }
  }

  async delete(
    key: ItemKey,
    condition?: string,
    values?: Record<string, unknown>,
  ): Promise<boolean> {
    this.beforeWrite();
    try {
      await this.doc.send(
        new DeleteCommand({
          TableName: this.table,
          Key: key,
          ...(condition ? { ConditionExpression: condition } : {}),
          ...(values ? { ExpressionAttributeValues: values } : {}),
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailed(err)) return false;
      throw storeError(err, 'DeleteItem');
    }
  }

  /** Every item of a query, page by page. */
  async query(input: Omit<QueryCommandInput, 'TableName'>): Promise<Item[]> {
    const items: Item[] = [];
    let start: Record<string, unknown> | undefined;
    try {
      do {
        const out = await this.doc.send(
          new QueryCommand({
            TableName: this.table,
            ...input,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        items.push(...(out.Items ?? []));
        start = out.LastEvaluatedKey;
      } while (start && (input.Limit === undefined || items.length < input.Limit));
    } catch (err) {
      throw storeError(err, 'Query');
    }
    return items;
  }

  /** Items of a whole partition (optionally those whose sort key starts with a prefix). */
  partition(pk: string, skPrefix?: string, consistent = true): Promise<Item[]> {
    return this.query({
      KeyConditionExpression: skPrefix ? 'pk = :pk AND begins_with(sk, :p)' : 'pk = :pk',
      ExpressionAttributeValues: skPrefix ? { ':pk': pk, ':p': skPrefix } : { ':pk': pk },
      ConsistentRead: consistent,
    });
  }

  async scan(input: Omit<ScanCommandInput, 'TableName'>, each: (items: Item[]) => Promise<void>) {
    let start: Record<string, unknown> | undefined;
    try {
      do {
        const out = await this.doc.send(
          new ScanCommand({
            TableName: this.table,
            ...input,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        await each(out.Items ?? []);
        start = out.LastEvaluatedKey;
      } while (start);
    } catch (err) {
      throw storeError(err, 'Scan');
    }
  }

  /** Reads items by key (100 per request, unprocessed keys retried), strongly consistent. */
  async batchGet(keys: readonly ItemKey[]): Promise<Item[]> {
    const out: Item[] = [];
    const chunks: ItemKey[][] = [];
    for (let i = 0; i < keys.length; i += 100) chunks.push(keys.slice(i, i + 100));
    await mapLimit(chunks, this.concurrency, async (chunk) => {
      let pending: Record<string, unknown>[] = chunk as unknown as Record<string, unknown>[];
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
        if (attempt > 8) throw storeError(new Error('unprocessed keys'), 'BatchGetItem');
        try {
          const res = await this.doc.send(
            new BatchGetCommand({
              RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } },
            }),
          );
          out.push(...(res.Responses?.[this.table] ?? []));
          pending = (res.UnprocessedKeys?.[this.table]?.Keys ?? []) as Record<string, unknown>[];
        } catch (err) {
          throw storeError(err, 'BatchGetItem');
        }
      }
    });
    return out;
  }

  /** Deletes items by key, 25 per request, unprocessed ones retried. */
  batchDelete(keys: readonly ItemKey[]): Promise<void> {
    return this.batchWrite(keys.map((k) => ({ DeleteRequest: { Key: { pk: k.pk, sk: k.sk } } })));
  }

  /** Puts items unconditionally (BatchWriteItem has no conditions), 25 per request. */
  batchPut(items: readonly Item[]): Promise<void> {
    return this.batchWrite(items.map((Item) => ({ PutRequest: { Item } })));
  }

  /** BatchWriteItem, 25 requests each, unprocessed ones retried. */
  private async batchWrite(requests: readonly Record<string, unknown>[]): Promise<void> {
    const chunks: Record<string, unknown>[][] = [];
    for (let i = 0; i < requests.length; i += 25) chunks.push(requests.slice(i, i + 25));
    await mapLimit(chunks, this.concurrency, async (chunk) => {
      this.beforeWrite();
      let pending = chunk;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
        if (attempt > 8) throw storeError(new Error('unprocessed items'), 'BatchWriteItem');
        try {
          const res = await this.doc.send(
            new BatchWriteCommand({ RequestItems: { [this.table]: pending } }),
          );
          pending = (res.UnprocessedItems?.[this.table] ?? []) as typeof pending;
        } catch (err) {
          throw storeError(err, 'BatchWriteItem');
        }
      }
    });
  }

  close(): void {
    this.doc.destroy();
    this.raw.destroy();
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
