/**
 * What rules cost a PostgreSQL batch, statement by statement: `PostgresStore.applyBatch` of
 * 700-event batches (the scale-out worker's typical transaction) from 10,000 users, into one
 * schema with the alert flood's three per-user rules (hourly tokens, daily requests, rolling
 * hour) and into another with none, alternating, on one connection each. Prints the wall time
 * per event of each and the time of each statement kind over the run.
 *
 *   node packages/server/dist/bench/pg-rules-bench.js   (needs PostgreSQL on loopback)
 *
 * A change is compared by running the script of each build alternately (`node
 * <tree>/packages/server/dist/bench/pg-rules-bench.js`), as the other benches.
 */
import { randomUUID } from 'node:crypto';
import type { PricedEvent, Rule } from '@tokenwatch/core';
import { makePricedEvent, makeRule } from '@tokenwatch/core/testing';
import type pg from 'pg';
import { PostgresStore } from '../adapters/store/postgres/postgres-store.js';
import { dropSchema, TEST_PG_URL, uniqueSchema } from '../testing/services.js';
import { loadAverage } from './bench-support.js';

const BATCH = Number(process.env.BENCH_BATCH ?? 700);
const USERS = 10_000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 8);
const BATCHES_PER_ROUND = 12;

const FLOOD_RULES: Array<Pick<Rule, 'metric' | 'window' | 'levels'>> = [
  {
    metric: 'inputTokens',
    window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
    levels: [{ value: 1_000 }],
  },
  {
    metric: 'requests',
    window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
    levels: [{ value: 3 }],
  },
  { metric: 'inputTokens', window: { type: 'rolling', minutes: 60 }, levels: [{ value: 2_000 }] },
];

interface Side {
  name: string;
  store: PostgresStore;
  schema: string;
  ms: number;
  events: number;
  statements: Map<string, { ms: number; count: number }>;
}

/** Times every statement of the store's connections, by its first words. */
function timeStatements(pool: pg.Pool, into: Side['statements'], measuring: () => boolean): void {
  pool.on('connect', (client) => {
    const query = client.query.bind(client) as (...args: unknown[]) => unknown;
    (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args) => {
      const text = typeof args[0] === 'string' ? args[0] : String(args[0]);
      const key = text.replace(/\s+/g, ' ').trim().slice(0, 48);
      const started = performance.now();
      const result = query(...args);
      if (measuring() && result instanceof Promise) {
        result.then(
          () => {
            const s = into.get(key) ?? { ms: 0, count: 0 };
            s.ms += performance.now() - started;
            s.count++;
            into.set(key, s);
          },
          () => {},
        );
      }
      return result;
    };
  });
}

async function openSide(name: string, withRules: boolean, measuring: () => boolean) {
  const schema = uniqueSchema(`prb${name}`);
  const store = new PostgresStore({ url: TEST_PG_URL, schema, poolSize: 1 });
  const side: Side = { name, store, schema, ms: 0, events: 0, statements: new Map() };
  timeStatements(store.pool, side.statements, measuring);
  await store.migrate();
  const now = Date.now();
  await store.createProject({ id: 'p1', name: 'p1', createdAtMs: now });
  if (withRules) {
    for (const r of FLOOD_RULES) {
      const rule = makeRule({
        scope: ['user'],
        channels: [{ type: 'log' }],
        createdAtMs: now,
        updatedAtMs: now,
        ...r,
      });
      await store.createRule(rule, now);
    }
  }
  return side;
}

let nextUser = 0;
function batch(): PricedEvent[] {
  return Array.from({ length: BATCH }, () =>
    makePricedEvent({
      id: randomUUID(),
      userId: `u${(nextUser++ * 7_919) % USERS}`,
      inputTokens: 150,
      outputTokens: 10,
      timestampMs: Date.now(),
      fingerprint: randomUUID(),
    }),
  );
}

async function main(): Promise<void> {
  console.log(`pg rules bench: ${new Date().toISOString()}, load ${loadAverage()}`);
  let measuring = false;
  const sides = [
    await openSide('rules', true, () => measuring),
    await openSide('none', false, () => measuring),
  ];
  try {
    for (let round = 0; round <= ROUNDS; round++) {
      // Round 0 warms both up; then the order alternates.
      measuring = round > 0;
      for (const side of round % 2 ? sides : [...sides].reverse()) {
        for (let i = 0; i < BATCHES_PER_ROUND; i++) {
          const events = batch();
          const started = performance.now();
          await side.store.applyBatch(events, { nowMs: Date.now() });
          if (measuring) {
            side.ms += performance.now() - started;
            side.events += events.length;
          }
        }
      }
    }
    const perEvent = (s: Side) => (1_000 * s.ms) / s.events;
    for (const side of sides) {
      console.log(
        `${side.name}: ${perEvent(side).toFixed(1)} µs wall per event over ${side.events} events`,
      );
      const rows = [...side.statements].sort((a, b) => b[1].ms - a[1].ms).slice(0, 10);
      for (const [key, s] of rows)
        console.log(`  ${(s.ms / s.count).toFixed(2).padStart(8)} ms × ${s.count}  ${key}`);
    }
    const [rules, none] = sides as [Side, Side];
    console.log(
      `rules ÷ none: ${(perEvent(rules) / perEvent(none)).toFixed(2)}×; load at end ${loadAverage()}`,
    );
  } finally {
    for (const side of sides) {
      await side.store.close();
      await dropSchema(side.schema);
    }
  }
}

await main();
