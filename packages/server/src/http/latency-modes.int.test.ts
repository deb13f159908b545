import { afterAll, describe, it } from 'vitest';
import { checkLatencyEndpoint } from '../testing/latency-endpoint.js';
import { type ModeName, startMode } from '../testing/running-modes.js';
import { killStartedWorkers } from '../testing/scale-out-harness.js';
import { killStartedServers } from '../testing/server-process.js';
import { natsReachable, postgresReachable } from '../testing/services.js';
import { TokenwatchApi } from '../testing/tokenwatch-api.js';
import { whenServices } from '../testing/when-services.js';

/**
 * Issue 13's latency panel API, `GET /v1/latency`, in every mode: `serve` (SQLite), scale-out
 * (`serve --queue` + workers on PostgreSQL) and the AWS Lambda API function on DynamoDB (dynalite).
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();

afterAll(async () => {
  await killStartedWorkers();
  await killStartedServers();
});

async function check(mode: ModeName): Promise<void> {
  const running = await startMode(mode, 'latency');
  try {
    const ingestKey = await running.createKey('default', 'ingest');
    const readKey = await running.createKey('default', 'read');
    await checkLatencyEndpoint(new TokenwatchApi(running.url), ingestKey, readKey, () =>
      running.drained(),
    );
  } finally {
    await running.close();
  }
}

describe('GET /v1/latency in every mode', () => {
  it('serve (embedded SQLite)', async () => {
    await check('embedded');
  });
  it('AWS: the Lambda API function on DynamoDB', async () => {
    await check('aws');
  });
});

whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
  describe('GET /v1/latency in scale-out', () => {
    it('serve --queue + workers on PostgreSQL', async () => {
      await check('scale-out');
    });
  });
});
