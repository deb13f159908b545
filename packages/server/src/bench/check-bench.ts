/**
 * `npm run bench:check` — how stale `POST /v1/check` can be, per mode: the time from the 202 of
 * an event that puts a user over an enforced budget to the first check that denies.
 *
 * Each round uses a fresh user: a check first (allowed; it warms the check cache with the user's
 * old value, the worst case), then one event that crosses the budget, then checks back to back
 * until one denies. Modes (see testing/running-modes.ts):
 *  - embedded: `tokenwatch serve` on SQLite;
 *  - scale-out: `serve --queue` + 2 workers on PostgreSQL and NATS JetStream (loopback services);
 *  - aws: the Lambda handlers on dynalite; the event goes to one API function instance and the
 *    check to another (each instance has its own cache), or the event goes through the SQS
 *    function (the round then starts when the handler returns).
 *
 * Environment: BENCH_CHECK_ROUNDS (rounds per mode, default 50), BENCH_CHECK_MODES (comma list,
 * default embedded,scale-out,aws).
 */
import { loadavg } from 'node:os';
import { httpRequest } from '../testing/http-client.js';
import { type RunningMode, startMode } from '../testing/running-modes.js';
import { fmt, percentile } from './bench-support.js';

const ROUNDS = Number(process.env.BENCH_CHECK_ROUNDS ?? 50);
const MODES = (process.env.BENCH_CHECK_MODES ?? 'embedded,scale-out,aws').split(',');
const BUDGET = 1_000;
/** Give up on a round after this long (a check that never denies is a bug, not a figure). */
const ROUND_TIMEOUT_MS = 30_000;

interface Row {
  label: string;
  staleness: number[];
  checksPerRound: number[];
}

function json(key: string, body: unknown) {
  return {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  };
}

async function check(sys: RunningMode, key: string, userId: string): Promise<boolean> {
  const res = await httpRequest(
    `${sys.checkUrl}/v1/check`,
    json(key, { userId, appId: 'chat', modelId: 'm1', provider: 'bedrock', estimatedTokens: 0 }),
  );
  if (res.status !== 200) throw new Error(`POST /v1/check: ${res.status} ${res.text}`);
  return res.json<{ allowed: boolean }>().allowed;
}

function crossingEvent(userId: string, round: number) {
  return {
    id: `check-bench-${userId}-${round}`,
    timestamp: Date.now(),
    userId,
    appId: 'chat',
    modelId: 'm1',
    provider: 'bedrock',
    inputTokens: BUDGET,
    outputTokens: 0,
  };
}

/** Rounds of: check (allowed), send the crossing event, check until denied. */
async function measure(
  sys: RunningMode,
  label: string,
  key: string,
  send: (userId: string, round: number) => Promise<void>,
): Promise<Row> {
  const row: Row = { label, staleness: [], checksPerRound: [] };
  for (let round = 0; round < ROUNDS; round++) {
    const userId = `${label.replace(/\W/g, '')}-u${round}`;
    if (!(await check(sys, key, userId))) throw new Error(`${userId} denied before any usage`);
    await send(userId, round);
    const sentMs = performance.now();
    let checks = 0;
    for (;;) {
      checks++;
      if (!(await check(sys, key, userId))) break;
      if (performance.now() - sentMs > ROUND_TIMEOUT_MS)
        throw new Error(`${label}: ${userId} still allowed ${ROUND_TIMEOUT_MS} ms after the 202`);
    }
    row.staleness.push(performance.now() - sentMs);
    row.checksPerRound.push(checks);
  }
  return row;
}

async function runMode(mode: string): Promise<Row[]> {
  const sys = await startMode(mode as 'embedded' | 'scale-out' | 'aws', 'checkbench');
  try {
    const key = await sys.createKey('default', 'admin');
    const rule = await httpRequest(
      `${sys.url}/v1/rules`,
      json(key, {
        name: 'hard daily budget',
        scope: ['user'],
        metric: 'totalTokens',
        window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
        levels: [{ value: BUDGET }],
        channels: [{ type: 'log' }],
        enforce: true,
      }),
    );
    if (rule.status !== 201) throw new Error(`POST /v1/rules: ${rule.status} ${rule.text}`);
    const overHttp = async (userId: string, round: number) => {
      const res = await httpRequest(
        `${sys.url}/v1/events`,
        json(key, { events: [crossingEvent(userId, round)] }),
      );
      if (res.status !== 202) throw new Error(`POST /v1/events: ${res.status} ${res.text}`);
    };
    const rows = [
      await measure(
        sys,
        mode === 'aws' ? 'aws, function URL (event to one instance, check to another)' : mode,
        key,
        overHttp,
      ),
    ];
    const sqs = sys.sqs;
    if (sqs) {
      rows.push(
        await measure(sys, 'aws, SQS function (from the handler’s return)', key, async (u, r) => {
          const result = (await sqs({
            Records: [
              { messageId: `m-${u}`, body: JSON.stringify({ events: [crossingEvent(u, r)] }) },
            ],
          })) as { batchItemFailures: unknown[] };
          if (result.batchItemFailures.length > 0) throw new Error('SQS handler refused the event');
        }),
      );
    }
    return rows;
  } finally {
    await sys.close();
  }
}

async function main(): Promise<void> {
  const loadBefore = loadavg();
  const rows: Row[] = [];
  for (const mode of MODES) rows.push(...(await runMode(mode)));
  const loadAfter = loadavg();
  console.log(
    `POST /v1/check staleness after the 202 of a crossing event, ${ROUNDS} rounds per mode, ${new Date().toISOString()}`,
  );
  console.log(
    `load average (1, 5, 15 min) before: ${loadBefore.map((l) => l.toFixed(2)).join(', ')}; after: ${loadAfter.map((l) => l.toFixed(2)).join(', ')}\n`,
  );
  console.log('| mode | p50 ms | p99 ms | max ms | checks until denied: median | max |');
  console.log('|---|---:|---:|---:|---:|---:|');
  for (const r of rows) {
    const s = [...r.staleness].sort((a, b) => a - b);
    const c = [...r.checksPerRound].sort((a, b) => a - b);
    console.log(
      `| ${r.label} | ${fmt(percentile(s, 50), 1)} | ${fmt(percentile(s, 99), 1)} | ${fmt(s[s.length - 1] ?? 0, 1)} | ${percentile(c, 50)} | ${c[c.length - 1]} |`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
