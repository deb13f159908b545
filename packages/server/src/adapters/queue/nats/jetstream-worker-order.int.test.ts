import {
  AckPolicy,
  jetstream,
  jetstreamManager,
  RetentionPolicy,
  StorageType,
} from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { makePricedEvent } from '@tokenwatch/core/testing';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../../logging/logger.js';
import { Metrics } from '../../../metrics/metrics.js';
import {
  dropSchema,
  natsReachable,
  postgresReachable,
  TEST_NATS_URL,
  TEST_PG_URL,
  uniqueSchema,
} from '../../../testing/services.js';
import { whenServices } from '../../../testing/when-services.js';
import { PostgresStore } from '../../store/postgres/postgres-store.js';
import { JetStreamSink } from './jetstream-sink.js';
import { JetStreamWorker } from './jetstream-worker.js';
import { partitionConsumer, partitionSubject } from './partitions.js';

/**
 * A worker whose store fails with a retryable error (here a real one: PostgreSQL's lock timeout
 * while the test holds a table lock) keeps a partition's messages in stream order: the batch
 * that failed is tried again before anything received after it. The order decides which payload
 * of a repeated id wins, so the first published one must stay first. A partition taken away
 * meanwhile gets what the worker held back in order, without waiting for the store.
 */
const pgUp = await postgresReachable();
const natsUp = await natsReachable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

whenServices({ PostgreSQL: pgUp, NATS: natsUp }, () => {
  describe('JetStreamWorker: a retryable failure', () => {
    const schema = uniqueSchema('order');
    const stream = schema.toUpperCase();
    const subject = `tw.test.${schema}`;
    const consumer = partitionConsumer(`${schema}-workers`, 0);
    let store: PostgresStore;

    beforeAll(async () => {
      store = new PostgresStore({ url: TEST_PG_URL, schema, poolSize: 2, lockTimeoutMs: 150 });
      await store.migrate();
      const nc = await connect({ servers: TEST_NATS_URL });
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        name: stream,
        subjects: [`${subject}.*`],
        storage: StorageType.File,
        retention: RetentionPolicy.Workqueue,
      });
      await jsm.consumers.add(stream, {
        durable_name: consumer,
        filter_subject: partitionSubject(subject, 0),
        ack_policy: AckPolicy.Explicit,
        ack_wait: 30_000_000_000,
      });
      await nc.close();
    });

    afterAll(async () => {
      await store?.close();
      await dropSchema(schema);
      const nc = await connect({ servers: TEST_NATS_URL });
      await (await jetstreamManager(nc)).streams.delete(stream).catch(() => {});
      await nc.close();
    });

    /**
     * A sink and workers on the test's stream, and a session that makes every rollup write fail
     * after the store's 150 ms lock timeout (55P03, retryable) until it commits.
     */
    async function rig() {
      const logger = createLogger('silent');
      const nc = await connect({ servers: TEST_NATS_URL });
      const sink = new JetStreamSink(
        nc,
        { subject, partitions: 1, publishTimeoutMs: 5_000, maxInFlightEvents: 10_000 },
        logger,
      );
      const workers: JetStreamWorker[] = [];
      const locker = new pg.Client({ connectionString: TEST_PG_URL });
      await locker.connect();
      return {
        sink,
        worker(metrics = new Metrics()) {
          const options = {
            stream,
            fetchMaxMessages: 4,
            ackWaitMs: 30_000,
            poisonAfterAttempts: 5,
            baseBackoffMs: 100,
          };
          const w = new JetStreamWorker(jetstream(nc), store, options, metrics, logger);
          workers.push(w);
          return w;
        },
        async failRollups() {
          await locker.query('BEGIN');
          await locker.query(`LOCK TABLE "${schema}".rollup_hour IN EXCLUSIVE MODE`);
        },
        async healRollups() {
          await locker.query('COMMIT');
        },
        async close() {
          await locker.query('ROLLBACK').catch(() => {});
          await locker.end();
          for (const w of workers) await w.stop();
          await sink.close();
          await nc.close();
        },
      };
    }

    const conflictsOf = async (projectId: string) =>
      (await store.listConflicts(projectId, 10)).map((c) => [
        c.eventId,
        c.firstFingerprint,
        c.conflictingFingerprint,
      ]);

    it('holds the failed batch and applies it before what came after it', async () => {
      const r = await rig();
      const metrics = new Metrics();
      const worker = r.worker(metrics);
      try {
        worker.start();
        worker.addSource(consumer);
        await r.failRollups();
        const first = makePricedEvent({ id: 'twice', inputTokens: 100, fingerprint: 'fp-first' });
        await r.sink.submit([first]);
        // Several failed attempts of the first copy's batch, then the second copy and more.
        while (metrics.flushFailures.get() < 2) await sleep(20);
        await r.sink.submit([{ ...first, inputTokens: 7, fingerprint: 'fp-second' }]);
        for (let i = 0; i < 6; i++) await r.sink.submit([makePricedEvent({ inputTokens: 1 })]);
        await sleep(700);
        await r.healRollups();
        while (worker.appliedMessages < 8) await sleep(20);

        expect(await conflictsOf('p1')).toEqual([['twice', 'fp-first', 'fp-second']]);
        const db = new pg.Client({ connectionString: TEST_PG_URL });
        await db.connect();
        try {
          const tokens = await db.query<{ t: string }>(
            `SELECT SUM(r.input_tokens) AS t FROM "${schema}".rollup_day r
             JOIN "${schema}".series s ON s.series_id = r.series_id WHERE s.project_id = 'p1'`,
          );
          expect(tokens.rows[0]?.t).toBe('106');
        } finally {
          await db.end();
        }
      } finally {
        await r.close();
      }
    }, 60_000);

    it('hands back what it holds, in order, when its partition is taken away during the outage', async () => {
      const r = await rig();
      const metrics = new Metrics();
      const leaving = r.worker(metrics);
      const taking = r.worker();
      try {
        leaving.start();
        leaving.addSource(consumer);
        await r.failRollups();
        const first = makePricedEvent({
          projectId: 'p2',
          id: 'moved',
          inputTokens: 100,
          fingerprint: 'fp-moved-first',
        });
        await r.sink.submit([first]);
        while (metrics.flushFailures.get() < 1) await sleep(20);
        await r.sink.submit([{ ...first, inputTokens: 7, fingerprint: 'fp-moved-second' }]);
        await sleep(300);
        // Resolves while the store still fails (it waited for the store before).
        await leaving.removeSource(consumer);
        await r.healRollups();
        taking.start();
        taking.addSource(consumer);
        while (taking.appliedMessages < 2) await sleep(20);
        expect(await conflictsOf('p2')).toEqual([['moved', 'fp-moved-first', 'fp-moved-second']]);
        expect(leaving.appliedMessages).toBe(0);
      } finally {
        await r.close();
      }
    }, 60_000);
  });
});
