import { runRuleContract, runStoreContract } from '@tokenwatch/core/testing';
import { afterAll, beforeAll } from 'vitest';
import { DynamoDbStore } from './dynamodb-store.js';
import { type LocalDynamo, startDynalite } from './testing/dynalite.js';

let local: LocalDynamo;
let tables = 0;

beforeAll(async () => {
  local = await startDynalite();
});
afterAll(async () => {
  await local.close();
});

async function open() {
  const store = new DynamoDbStore({
    tableName: `tokenwatch-${process.pid}-${++tables}`,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
  return { store, cleanup: () => store.close() };
}

runStoreContract('DynamoDB (dynalite)', open);
runRuleContract('DynamoDB (dynalite)', open);
// The rule oracle runs in dynamodb-oracle-<n>.int.test.ts (see testing/oracle-options.ts).
