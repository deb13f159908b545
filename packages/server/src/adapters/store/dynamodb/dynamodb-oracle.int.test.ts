import { runRuleOracleContract } from '@tokenwatch/core/testing';
import { afterAll, beforeAll } from 'vitest';
import { DynamoDbStore } from './dynamodb-store.js';
import { type LocalDynamo, startDynalite } from './testing/dynalite.js';
import { DYNAMODB_ORACLE } from './testing/oracle-options.js';

/** The second half of the DynamoDB rule oracle's cases (the first: dynamodb-store.int.test.ts). */

let local: LocalDynamo;
let tables = 0;

beforeAll(async () => {
  local = await startDynalite();
});
afterAll(async () => {
  await local.close();
});

runRuleOracleContract(
  'DynamoDB (dynalite)',
  async () => {
    const store = new DynamoDbStore({
      tableName: `tokenwatch-oracle-${process.pid}-${++tables}`,
      endpoint: local.endpoint,
      region: local.region,
      credentials: local.credentials,
      // dynalite's own request listener without the socket: see inProcessHandler.
      requestHandler: local.inProcess,
    });
    return { store, cleanup: () => store.close() };
  },
  { ...DYNAMODB_ORACLE, part: { index: 1, of: 2 } },
);
