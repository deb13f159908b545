import { runRuleContract, runRuleOracleContract, runStoreContract } from '@tokenwatch/core/testing';
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
// dynalite costs ~20 ms of CPU per case (every write is a LevelDB write in this process), so
// CI runs 2,000 cases here; TW_ORACLE_CASES=10000 runs the full count.
runRuleOracleContract('DynamoDB (dynalite)', open, {
  cases: Number(process.env.TW_ORACLE_CASES ?? 2_000),
  seed: 20261206,
  concurrency: 4,
  chunkEvents: 2_000,
});
