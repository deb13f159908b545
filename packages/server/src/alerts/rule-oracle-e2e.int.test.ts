import { afterAll, describe, expect, it } from 'vitest';
import { runHttpOracle } from '../testing/http-oracle.js';
import { type ModeName, type RunningMode, startMode } from '../testing/running-modes.js';
import { killStartedWorkers } from '../testing/scale-out-harness.js';
import { killStartedServers } from '../testing/server-process.js';
import { natsReachable, postgresReachable } from '../testing/services.js';
import { whenServices } from '../testing/when-services.js';

/**
 * The rule oracle end to end, once per mode: generated cases (events out of order, late, ahead,
 * repeated and conflicting, in random batches, some posted twice; rules of every window kind
 * created between the steps) sent over HTTP to the running system, and its alerts, rule values
 * (status) and budget checks held to the reference evaluator. The store-level oracle runs thousands of cases per
 * store; this checks that the HTTP, queue and Lambda paths in front of the stores change nothing.
 */
const CASES = process.env.TW_E2E_ORACLE_CASES;
/** Another seed for every mode (a search for new failing cases; the defaults are fixed). */
const SEED = process.env.TW_E2E_ORACLE_SEED;
/** Cases per mode: dynalite is slow (a step of 30 cases takes ~10 s on it), the others are not. */
const casesOf = (mode: ModeName) => Number(CASES ?? (mode === 'aws' ? 12 : 40));
const pgUp = await postgresReachable();
const natsUp = await natsReachable();

afterAll(async () => {
  await killStartedWorkers();
  await killStartedServers();
});

function oracleRun(mode: ModeName, defaultSeed: number) {
  const cases = casesOf(mode);
  const seed = SEED === undefined ? defaultSeed : Number(SEED);
  it(`${mode}: alerts, rule values and /v1/check agree with the reference evaluator on ${cases} cases`, async () => {
    let sys: RunningMode | undefined;
    try {
      sys = await startMode(mode, `oracle${mode.replace('-', '')}`);
      const report = await runHttpOracle(sys, { cases, seed });
      const { failures: _f, ...counts } = report;
      console.log(`rule oracle over HTTP, ${mode}, seed ${seed}: ${JSON.stringify(counts)}`);
      expect(report.failures).toEqual([]);
      // The cases exercise what they claim to: alerts fired and some checks denied.
      expect(report.alerts).toBeGreaterThan(0);
      expect(report.denied).toBeGreaterThan(0);
    } finally {
      await sys?.close();
    }
  }, 180_000);
}

describe('rule oracle over HTTP', () => {
  oracleRun('embedded', 2026_12_01);
  oracleRun('aws', 2026_12_03);
});

whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
  describe('rule oracle over HTTP (scale-out)', () => {
    oracleRun('scale-out', 2026_12_02);
  });
});
