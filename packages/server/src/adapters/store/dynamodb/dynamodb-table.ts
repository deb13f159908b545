/**
 * The table's setup: its definition (the keys and indexes of keys.ts) and the migration that
 * creates it with its TTL where it does not exist yet (local use; see DynamoDbStore.migrate).
 */
import {
  CreateTableCommand,
  type CreateTableCommandInput,
  DescribeTableCommand,
  ResourceInUseException,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { type DynamoIo, storeError } from './dynamodb-io.js';
import type { DynamoRules } from './dynamodb-rules.js';
import { GSI_HOURS, GSI_OUTBOX, TTL_ATTR } from './keys.js';

/** The table definition: the CDK stack in deploy/aws declares the same keys and indexes. */
export function tableDefinition(tableName: string): CreateTableCommandInput {
  const s = (name: string) => ({ AttributeName: name, AttributeType: 'S' as const });
  return {
    TableName: tableName,
    BillingMode: 'PAY_PER_REQUEST',
    AttributeDefinitions: [s('pk'), s('sk'), s('gsi1pk'), s('gsi1sk'), s('gsi2pk'), s('gsi2sk')],
    KeySchema: [
      { AttributeName: 'pk', KeyType: 'HASH' },
      { AttributeName: 'sk', KeyType: 'RANGE' },
    ],
    GlobalSecondaryIndexes: [
      {
        IndexName: GSI_HOURS,
        KeySchema: [
          { AttributeName: 'gsi1pk', KeyType: 'HASH' },
          { AttributeName: 'gsi1sk', KeyType: 'RANGE' },
        ],
        Projection: { ProjectionType: 'ALL' },
      },
      {
        IndexName: GSI_OUTBOX,
        KeySchema: [
          { AttributeName: 'gsi2pk', KeyType: 'HASH' },
          { AttributeName: 'gsi2sk', KeyType: 'RANGE' },
        ],
        // What a lease's compare-and-set needs; the rest is read with the update's ALL_NEW.
        Projection: {
          ProjectionType: 'INCLUDE',
          NonKeyAttributes: ['id', 'status', 'attempts', 'nextAttemptMs'],
        },
      },
    ],
  };
}

/**
 * Creates table `name` with its indexes and TTL when it does not exist, and waits until it is
 * active; on an existing table it migrates the rules stored in the legacy layout.
 */
export async function migrateTable(io: DynamoIo, name: string, rules: DynamoRules): Promise<void> {
  let exists = true;
  try {
    await io.raw.send(new DescribeTableCommand({ TableName: name }));
  } catch (err) {
    if ((err as { name?: string }).name !== 'ResourceNotFoundException')
      throw storeError(err, 'DescribeTable');
    exists = false;
  }
  if (exists) {
    await rules.migrateLegacyRules();
    return;
  }
  try {
    await io.raw.send(new CreateTableCommand(tableDefinition(name)));
  } catch (err) {
    if (!(err instanceof ResourceInUseException)) throw storeError(err, 'CreateTable');
  }
  for (let i = 0; i < 600; i++) {
    const t = await io.raw.send(new DescribeTableCommand({ TableName: name }));
    const indexes = t.Table?.GlobalSecondaryIndexes ?? [];
    if (t.Table?.TableStatus === 'ACTIVE' && indexes.every((x) => x.IndexStatus === 'ACTIVE'))
      break;
    await new Promise((r) => setTimeout(r, 100));
  }
  try {
    await io.raw.send(
      new UpdateTimeToLiveCommand({
        TableName: name,
        TimeToLiveSpecification: { AttributeName: TTL_ATTR, Enabled: true },
      }),
    );
  } catch (err) {
    // dynalite does not implement TTL; prune() deletes expired items explicitly there.
    const n = (err as { name?: string }).name;
    if (n !== 'UnknownOperationException' && n !== 'ValidationException')
      throw storeError(err, 'UpdateTimeToLive');
  }
}
