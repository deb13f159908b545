import { type OracleRunOptions, runRuleOracleContract } from '@tokenwatch/core/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DynamoDbStore } from '../dynamodb-store.js';
import { type DynamoClient, type LocalDynamo, startDynalite } from './dynalite.js';

/**
 * The DynamoDB rule oracle's run, split over ORACLE_FILES test files
 * (dynamodb-oracle-<n>.int.test.ts, a quarter of the cases each) so the two test workers share
 * it evenly. Its commands go to dynalite in the process without the SDK (testing/dynalite.ts
 * directClient) and are counted: 70 to 72 a case, the oracle's own reads included. On 300 of
 * the cases: 87 before rules were cached against the rule lock's version, seeds read whole days
 * from the day rollups, calendar counters were read back from their update and the oracle read
 * shared counters once; 68 after. Dynalite's parsing of expressions took 42 % of a case's CPU
 * (13.0 of 31 s for 500 cases), mostly conditions in redundant parentheses; without them
 * (expression.ts, joinConditions) the same 500 cases took 22 s, about 44 ms a case on the
 * machine that measured 62-69 ms before (73 ms through the SDK, which the other DynamoDB tests
 * cover). CI runs 10,000 cases, as for the other adapters (see the README, "The rule oracle").
 */
export const DYNAMODB_ORACLE: OracleRunOptions = {
  cases: Number(process.env.TW_ORACLE_CASES ?? 10_000),
  seed: 20261206,
  concurrency: 4,
  chunkEvents: 2_000,
};

export const ORACLE_FILES = 4;

/**
 * Requests per case a part may send: a few above what it sends (70.5, 71.4, 72.2 and 71.1 per case
 * in parts 1-4 on 2026-12-03), so a change that adds requests to a rule save or a batch fails here (each is a
 * cost on AWS, and the oracle's CI time).
 */
export const MAX_REQUESTS_PER_CASE = 76;

/** The same client, counting the commands it sends. */
function counted(inner: DynamoClient, count: () => void): DynamoClient {
  return {
    send: ((command: Parameters<DynamoClient['send']>[0]) => {
      count();
      return inner.send(command);
    }) as DynamoClient['send'],
    destroy: () => inner.destroy(),
  };
}

/** Registers part `index` (0-based) of ORACLE_FILES of the DynamoDB rule oracle in this file. */
export function runDynamoDbOraclePart(index: number): void {
  let local: LocalDynamo;
  let tables = 0;
  let requests = 0;
  beforeAll(async () => {
    local = await startDynalite();
  });
  afterAll(async () => {
    await local.close();
  });
  const options = { ...DYNAMODB_ORACLE, part: { index, of: ORACLE_FILES } };
  runRuleOracleContract(
    'DynamoDB (dynalite)',
    async () => {
      const store = new DynamoDbStore({
        tableName: `tokenwatch-oracle-${process.pid}-${++tables}`,
        endpoint: local.endpoint,
        region: local.region,
        credentials: local.credentials,
        // dynalite's own request listener without the SDK and the socket (see directClient);
        // the contracts in dynamodb-store.int.test.ts go through the SDK over loopback HTTP.
        client: counted(local.direct, () => requests++),
      });
      return { store, cleanup: () => store.close() };
    },
    options,
  );
  it(`sends at most ${MAX_REQUESTS_PER_CASE} DynamoDB requests per oracle case`, () => {
    const cases =
      Math.floor(((index + 1) * options.cases) / ORACLE_FILES) -
      Math.floor((index * options.cases) / ORACLE_FILES);
    const perCase = requests / cases;
    console.info(
      `DynamoDB oracle part ${index + 1}: ${requests} requests, ${perCase.toFixed(1)} per case`,
    );
    expect(perCase).toBeLessThanOrEqual(MAX_REQUESTS_PER_CASE);
  });
}
