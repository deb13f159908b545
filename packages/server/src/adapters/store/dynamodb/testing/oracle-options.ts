import { type OracleRunOptions, runRuleOracleContract } from '@tokenwatch/core/testing';
import { afterAll, beforeAll } from 'vitest';
import { DynamoDbStore } from '../dynamodb-store.js';
import { type LocalDynamo, startDynalite } from './dynalite.js';

/**
 * The DynamoDB rule oracle's run, split over ORACLE_FILES test files (dynamodb-oracle-<n>.int.test.ts,
 * a quarter of the cases each) so the two test workers share it evenly. A case costs about 68
 * requests through the AWS SDK to dynalite (87 before rules were cached against the rule lock's
 * version, seeds read whole days from the day rollups and calendar counters were read back from
 * their update; the oracle's own reads included), handed over without a socket
 * (testing/dynalite.ts inProcessHandler). CI runs 4,000 cases: what the 15-minute CI budget
 * holds (see BENCHMARKS.md § AWS); TW_ORACLE_CASES=10000 runs as many as the other adapters.
 */
export const DYNAMODB_ORACLE: OracleRunOptions = {
  cases: Number(process.env.TW_ORACLE_CASES ?? 4_000),
  seed: 20261206,
  concurrency: 4,
  chunkEvents: 2_000,
};

export const ORACLE_FILES = 4;

/** Registers part `index` (0-based) of ORACLE_FILES of the DynamoDB rule oracle in this file. */
export function runDynamoDbOraclePart(index: number): void {
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
        // dynalite's own request listener without the socket (see inProcessHandler); the
        // contracts in dynamodb-store.int.test.ts go through loopback HTTP, as production does.
        requestHandler: local.inProcess,
      });
      return { store, cleanup: () => store.close() };
    },
    { ...DYNAMODB_ORACLE, part: { index, of: ORACLE_FILES } },
  );
}
