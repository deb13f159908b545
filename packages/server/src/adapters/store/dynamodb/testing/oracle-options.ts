import type { OracleRunOptions } from '@tokenwatch/core/testing';

/**
 * The DynamoDB rule oracle's run, split over two test files (dynamodb-store.int.test.ts and
 * dynamodb-oracle.int.test.ts, half the cases each) so both test workers share it. A case costs
 * about 90 requests through the AWS SDK to dynalite, handed over without a socket
 * (testing/dynalite.ts inProcessHandler): about 1.2 ms of CPU each in this process, 110 ms a
 * case, against 1.7-1.9 ms over loopback HTTP (same run, load 2-9). CI runs 3,000 cases in
 * about the time 2,000 took over HTTP (216 s a file against 204 s, load ~4); the other
 * adapters' 10,000 would take three times that (TW_ORACLE_CASES=10000 runs them).
 */
export const DYNAMODB_ORACLE: OracleRunOptions = {
  cases: Number(process.env.TW_ORACLE_CASES ?? 3_000),
  seed: 20261206,
  concurrency: 4,
  chunkEvents: 2_000,
};
