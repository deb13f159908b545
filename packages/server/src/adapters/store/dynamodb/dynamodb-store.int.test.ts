import { runRuleContract, runRuleOracleContract, runStoreContract } from '@tokenwatch/core/testing';
import { afterAll, beforeAll } from 'vitest';
import { DynamoDbStore } from './dynamodb-store.js';
import { type LocalDynamo, startDynalite } from './testing/dynalite.js';
import { DYNAMODB_ORACLE } from './testing/oracle-options.js';

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
// The oracle's many cases reach dynalite without the socket (see inProcessHandler); the
// contracts above go through loopback HTTP, as production goes through HTTPS.
async function openInProcess() {
  const store = new DynamoDbStore({
    tableName: `tokenwatch-oracle-${process.pid}-${++tables}`,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
    requestHandler: local.inProcess,
  });
  return { store, cleanup: () => store.close() };
}

runRuleOracleContract('DynamoDB (dynalite)', openInProcess, {
  ...DYNAMODB_ORACLE,
  part: { index: 0, of: 2 },
});
