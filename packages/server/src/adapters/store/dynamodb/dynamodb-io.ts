import {
  type AttributeValue,
  BatchGetItemCommand,
  BatchWriteItemCommand,
  ConditionalCheckFailedException,
  DeleteItemCommand,
  DynamoDBClient,
  type DynamoDBClientConfig,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  ScanCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type {
  PutCommandInput,
  QueryCommandInput,
  ScanCommandInput,
  UpdateCommandInput,
} from '@aws-sdk/lib-dynamodb';
import { marshall, unmarshall } from '@aws-sdk/util-dynamodb';
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
   * The client commands are sent through (default: a DynamoDBClient built from the options
   * above). The rule oracle's long runs give one that hands each command's input to dynalite in
   * the process (testing/dynalite.ts `directClient`); every other test and production use the SDK.
   */
  client?: Pick<DynamoDBClient, 'send' | 'destroy'>;
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

/** A DynamoDB number as `unmarshall` returns it with `wrapNumbers` (exact strings). */
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

type Attrs = Record<string, AttributeValue>;

/** Items to the wire: undefined attributes left out (as the document client's option did). */
const toAttrs = (value: object): Attrs =>
  marshall(value as Record<string, unknown>, { removeUndefinedValues: true });
/** Items from the wire, numbers as exact strings (costs in nano-USD pass 2^53). */
const fromAttrs = (attrs: Attrs): Item => unmarshall(attrs, { wrapNumbers: true });

/** Expression values marshalled, when there are any. */
function withValues<T extends { ExpressionAttributeValues?: Record<string, unknown> | undefined }>(
  input: T,
): Omit<T, 'ExpressionAttributeValues'> & { ExpressionAttributeValues?: Attrs } {
  const { ExpressionAttributeValues: values, ...rest } = input;
  return values === undefined ? rest : { ...rest, ExpressionAttributeValues: toAttrs(values) };
}

/**
 * The plain DynamoDB client and the few access patterns the store uses, with errors mapped.
 * Items are (un)marshalled here with util-dynamodb rather than by the document client's
 * middleware, so the client can keep its resolved middleware stack per command class
 * (`cacheMiddleware`, which the document client refuses): about a quarter less SDK CPU per
 * request (250 -> 175 us measured on a canned response), on every batch and rule save.
 */
export class DynamoIo {
  readonly raw: Pick<DynamoDBClient, 'send' | 'destroy'>;
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
    this.raw = options.client ?? new DynamoDBClient(clientConfig(options));
    this.table = options.tableName;
    this.concurrency = options.concurrency ?? 16;
  }

  async get(key: ItemKey, consistent = true): Promise<Item | undefined> {
    try {
      const out = await this.raw.send(
        new GetItemCommand({
          TableName: this.table,
          Key: toAttrs(key),
          ConsistentRead: consistent,
        }),
      );
      return out.Item ? fromAttrs(out.Item) : undefined;
    } catch (err) {
      throw storeError(err, 'GetItem');
    }
  }

  /** Put; false when the condition failed. */
  async put(item: Item, condition?: Omit<PutCommandInput, 'TableName' | 'Item'>): Promise<boolean> {
    this.beforeWrite();
    try {
      await this.raw.send(
        new PutItemCommand({
          TableName: this.table,
          Item: toAttrs(item),
          ...(condition ? withValues(condition) : {}),
        }),
      );
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
      const out = await this.raw.send(
        new UpdateItemCommand({
          TableName: this.table,
          Key: toAttrs(key),
          ReturnValues: 'ALL_NEW',
          ...withValues(input),
        }),
      );
      return out.Attributes ? fromAttrs(out.Attributes) : {};
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
      await this.raw.send(
        new DeleteItemCommand({
          TableName: this.table,
          Key: toAttrs(key),
          ...(condition ? { ConditionExpression: condition } : {}),
          ...(values ? { ExpressionAttributeValues: toAttrs(values) } : {}),
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
    const { ExclusiveStartKey: first, ...rest } = withValues(input);
    let start: Attrs | undefined = first ? toAttrs(first) : undefined;
    try {
      do {
        const out = await this.raw.send(
          new QueryCommand({
            TableName: this.table,
            ...rest,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        for (const i of out.Items ?? []) items.push(fromAttrs(i));
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
    const { ExclusiveStartKey: first, ...rest } = withValues(input);
    let start: Attrs | undefined = first ? toAttrs(first) : undefined;
    try {
      do {
        const out = await this.raw.send(
          new ScanCommand({
            TableName: this.table,
            ...rest,
            ...(start ? { ExclusiveStartKey: start } : {}),
          }),
        );
        await each((out.Items ?? []).map(fromAttrs));
        start = out.LastEvaluatedKey;
      } while (start);
    } catch (err) {
      throw storeError(err, 'Scan');
    }
  }

  /** Reads items by key (100 per request, unprocessed keys retried), strongly consistent. */
  async batchGet(keys: readonly ItemKey[]): Promise<Item[]> {
    const out: Item[] = [];
    const chunks: Attrs[][] = [];
    for (let i = 0; i < keys.length; i += 100) chunks.push(keys.slice(i, i + 100).map(toAttrs));
    await mapLimit(chunks, this.concurrency, async (chunk) => {
      let pending = chunk;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
        if (attempt > 8) throw storeError(new Error('unprocessed keys'), 'BatchGetItem');
        try {
          const res = await this.raw.send(
            new BatchGetItemCommand({
              RequestItems: { [this.table]: { Keys: pending, ConsistentRead: true } },
            }),
          );
          for (const i of res.Responses?.[this.table] ?? []) out.push(fromAttrs(i));
          pending = res.UnprocessedKeys?.[this.table]?.Keys ?? [];
        } catch (err) {
          throw storeError(err, 'BatchGetItem');
        }
      }
    });
    return out;
  }

  /** Deletes items by key, 25 per request, unprocessed ones retried. */
  batchDelete(keys: readonly ItemKey[]): Promise<void> {
    return this.batchWrite(
      keys.map((k) => ({ DeleteRequest: { Key: toAttrs({ pk: k.pk, sk: k.sk }) } })),
    );
  }

  /** Puts items unconditionally (BatchWriteItem has no conditions), 25 per request. */
  batchPut(items: readonly Item[]): Promise<void> {
    return this.batchWrite(items.map((item) => ({ PutRequest: { Item: toAttrs(item) } })));
  }

  /** BatchWriteItem, 25 requests each, unprocessed ones retried. */
  private async batchWrite(requests: readonly WriteRequest[]): Promise<void> {
    const chunks: WriteRequest[][] = [];
    for (let i = 0; i < requests.length; i += 25) chunks.push(requests.slice(i, i + 25));
    await mapLimit(chunks, this.concurrency, async (chunk) => {
      this.beforeWrite();
      let pending = chunk;
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 0) await sleep(Math.min(1000, 25 * 2 ** attempt));
        if (attempt > 8) throw storeError(new Error('unprocessed items'), 'BatchWriteItem');
        try {
          const res = await this.raw.send(
            new BatchWriteItemCommand({ RequestItems: { [this.table]: pending } }),
          );
          pending = (res.UnprocessedItems?.[this.table] ?? []) as WriteRequest[];
        } catch (err) {
          throw storeError(err, 'BatchWriteItem');
        }
      }
    });
  }

  close(): void {
    this.raw.destroy();
  }
}

function clientConfig(options: DynamoDbStoreOptions): DynamoDBClientConfig {
  const config: DynamoDBClientConfig = { maxAttempts: 4, cacheMiddleware: true };
  if (options.region !== undefined) config.region = options.region;
  if (options.endpoint !== undefined) config.endpoint = options.endpoint;
  if (options.credentials !== undefined) config.credentials = options.credentials;
  return config;
}

type WriteRequest = { PutRequest: { Item: Attrs } } | { DeleteRequest: { Key: Attrs } };

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
