import type { OracleRunOptions } from '@tokenwatch/core/testing';

/**
 * The DynamoDB rule oracle's run, split over two test files (dynamodb-store.int.test.ts and
 * dynamodb-oracle.int.test.ts, half the cases each) so both test workers share it. A case costs
 * about 100 requests through the AWS SDK to dynalite (1.5-2.5 ms of CPU each, in this process),
 * so CI runs 2,000 cases, not the 10,000 of the other adapters; TW_ORACLE_CASES=10000 runs them.
 */
export const DYNAMODB_ORACLE: OracleRunOptions = {
  cases: Number(process.env.TW_ORACLE_CASES ?? 2_000),
  seed: 20261206,
  concurrency: 4,
  chunkEvents: 2_000,
};
