import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  createScaleOutEnv,
  killStartedWorkers,
  startWorkerProcess,
  waitDrained,
} from '../../../testing/scale-out-harness.js';
import { killStartedServers, startServerProcess } from '../../../testing/server-process.js';
import { natsReachable, postgresReachable, TEST_NATS_URL } from '../../../testing/services.js';
import { TokenwatchApi } from '../../../testing/tokenwatch-api.js';
import { whenServices } from '../../../testing/when-services.js';
import { partitionOf, partitionSubject } from './partitions.js';

/**
 * An id sent again, in a later request, with a payload naming another user: the first payload
 * must win in scale-out as it does embedded. The repeat's own user hashes to another partition;
 * left there, it would be applied long before its first copy, which waits behind a backlog of
 * 10,000 events in its partition.
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();
const PARTITIONS = 8;
const PROJECT = 'default';

function event(id: string, userId: string, inputTokens: number) {
  return {
    id,
    timestamp: Date.now(),
    userId,
    appId: 'app',
    modelId: 'm1',
    provider: 'bedrock',
    inputTokens,
    outputTokens: 0,
  };
}

whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
  describe('scale-out: a repeated id in another partition', () => {
    afterAll(async () => {
      await killStartedWorkers();
      await killStartedServers();
    });

    it('follows its first copy, so the first payload wins behind a backlog', async () => {
      const env = await createScaleOutEnv('xpart', { queue: { partitions: PARTITIONS } });
      try {
        const serve = await startServerProcess({ dataDir: env.dataDir });
        const api = new TokenwatchApi(serve.url);
        const post = async (events: unknown[]) => {
          const res = await api.postEvents(serve.ingestKey, { events });
          expect(res.status, res.text).toBe(202);
        };
        const first = 'heavy';
        const pFirst = partitionOf(PROJECT, first, PARTITIONS);
        let other = 'u0';
        for (let i = 1; partitionOf(PROJECT, other, PARTITIONS) === pFirst; i++) other = `u${i}`;

        // No worker yet: the first copy's partition gets a backlog, then the two copies.
        for (let r = 0; r < 40; r++)
          await post(Array.from({ length: 250 }, (_, i) => event(`b${r}-${i}`, first, 1)));
        await post([event('twice', first, 100)]);
        await post([event('twice', other, 7)]);

        const nc = await connect({ servers: TEST_NATS_URL });
        try {
          const jsm = await jetstreamManager(nc);
          const info = await jsm.streams.info(env.stream, { subjects_filter: '>' });
          const subjects = info.state.subjects ?? {};
          expect(subjects[partitionSubject(env.subject, pFirst)]).toBe(42);
          expect(Object.keys(subjects)).toEqual([partitionSubject(env.subject, pFirst)]);
        } finally {
          await nc.close();
        }

        await startWorkerProcess(env);
        await startWorkerProcess(env);
        await waitDrained(env);

        const db = new pg.Client({ connectionString: env.pgUrl });
        await db.connect();
        try {
          await db.query(`SET search_path = "${env.schema}"`);
          const perUser = await db.query<{ user_id: string; requests: string; tokens: string }>(
            `SELECT s.user_id, SUM(r.requests) AS requests, SUM(r.input_tokens) AS tokens
             FROM rollup_day r JOIN series s ON s.series_id = r.series_id GROUP BY 1 ORDER BY 1`,
          );
          expect(perUser.rows).toEqual([{ user_id: first, requests: '10001', tokens: '10100' }]);
          const conflicts = await db.query<{ event_id: string }>('SELECT event_id FROM conflicts');
          expect(conflicts.rows).toEqual([{ event_id: 'twice' }]);
        } finally {
          await db.end();
        }
      } finally {
        await killStartedWorkers();
        await env.cleanup();
      }
    }, 120_000);
  });
});
