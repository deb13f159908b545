import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  addTotals,
  DAY_MS,
  HOUR_MS,
  makeEvent,
  newEventId,
  pickTotals,
  seededRandom,
  sumByUser,
  sumEvents,
  TokenwatchApi,
  type Totals,
  totalsOfEvent,
  type WireEvent,
  ZERO_TOTALS,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, "Duplicates": the same batch sent again counts once, the totals equal a recount from
 * the events, and the same id with another payload keeps the first and reports the conflict.
 * Against `tokenwatch serve` over HTTP, including a restart on the same data dir.
 */

let server: ServerProcess;
let api: TokenwatchApi;
let ingestKey: string;
let adminKey: string;
/** Every event the server accepted (first payload of each id), for the final recount. */
const counted: WireEvent[] = [];

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  ingestKey = server.ingestKey as string;
  adminKey = server.adminKey as string;
});

afterAll(async () => {
  if (server) {
    await server.kill('SIGTERM');
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

const MODELS: Array<[string, string]> = [
  ['gpt-4o-mini', 'openai'],
  ['anthropic.claude-3-haiku-20240307-v1:0', 'bedrock'],
  ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock'],
  ['claude-sonnet-4-5-20250929', 'anthropic'],
];

/** A batch spread over users, models and hours, including late events from weeks ago. */
function makeBatch(label: string, size: number, seed: number): WireEvent[] {
  const rnd = seededRandom(seed);
  const now = Date.now();
  return Array.from({ length: size }, (_, i) => {
    const [modelId, provider] = MODELS[Math.floor(rnd() * MODELS.length)] as [string, string];
    const ageMs =
      i % 10 === 0 ? Math.floor(rnd() * 34 * DAY_MS) : Math.floor(rnd() * 6 * HOUR_MS) + 60_000;
    return makeEvent({
      id: newEventId(now - ageMs),
      timestamp: new Date(now - ageMs).toISOString(),
      userId: `${label}-user-${Math.floor(rnd() * 7)}`,
      appId: `app-${Math.floor(rnd() * 3)}`,
      modelId,
      provider,
      inputTokens: Math.floor(rnd() * 5000),
      outputTokens: Math.floor(rnd() * 2000),
      cacheReadTokens: Math.floor(rnd() * 3) === 0 ? Math.floor(rnd() * 9000) : 0,
      cacheWriteTokens: Math.floor(rnd() * 4) === 0 ? Math.floor(rnd() * 700) : 0,
      status: rnd() < 0.05 ? 'error' : 'ok',
    });
  });
}

/** Recount per (user, hour bucket) of the events, as `groupBy=user&interval=hour` must return. */
function recountByUserHour(events: readonly WireEvent[]): Map<string, Totals> {
  const out = new Map<string, Totals>();
  for (const e of events) {
    const ms = new Date(e.timestamp).getTime();
    const key = `${e.userId}|${new Date(ms - (ms % HOUR_MS)).toISOString()}`;
    out.set(key, addTotals(out.get(key) ?? { ...ZERO_TOTALS }, totalsOfEvent(e)));
  }
  return out;
}

async function expectTotalsMatchRecount(): Promise<void> {
  expect(await api.storedTotals(adminKey)).toEqual(sumEvents(counted));
  expect(await api.totalsByUser(adminKey)).toEqual(sumByUser(counted));
  const rows = await api.usageRows(adminKey, {
    groupBy: 'user',
    interval: 'hour',
    limit: '10000',
  });
  const stored = new Map(rows.map((r) => [`${r.user}|${r.bucket}`, pickTotals(r)]));
  expect(stored).toEqual(recountByUserHour(counted));
}

describe('the same batch sent three times counts once', () => {
  it('answers accepted N, then duplicates N twice, and the totals equal the recount', async () => {
    const events = makeBatch('thrice', 300, 1);
    const answers = [];
    for (let i = 0; i < 3; i++) {
      const res = await api.postEvents(ingestKey, { events });
      expect(res.status, res.text).toBe(202);
      answers.push(res.json());
    }
    expect(answers).toEqual([
      { accepted: 300, duplicates: 0, conflicts: 0 },
      { accepted: 0, duplicates: 300, conflicts: 0 },
      { accepted: 0, duplicates: 300, conflicts: 0 },
    ]);
    counted.push(...events);
    await expectTotalsMatchRecount();
  });

  it('counts once when the same batch arrives on 8 connections at once', async () => {
    const events = makeBatch('racing', 200, 2);
    const body = JSON.stringify({ events });
    const answers = await Promise.all(
      Array.from({ length: 8 }, () => api.postEvents(ingestKey, body)),
    );
    for (const a of answers) expect(a.status, a.text).toBe(202);
    const counts = answers.map((a) => a.json<{ accepted: number; duplicates: number }>());
    expect(counts.reduce((s, c) => s + c.accepted, 0)).toBe(200);
    expect(counts.reduce((s, c) => s + c.duplicates, 0)).toBe(7 * 200);
    counted.push(...events);
    await expectTotalsMatchRecount();
  });

  it('counts a batch once when its events overlap earlier batches', async () => {
    const fresh = makeBatch('overlap', 50, 3);
    const old = counted.slice(0, 25);
    const res = await api.postEvents(ingestKey, { events: [...old, ...fresh] });
    expect(res.status).toBe(202);
    expect(res.json()).toEqual({ accepted: 50, duplicates: 25, conflicts: 0 });
    counted.push(...fresh);
    await expectTotalsMatchRecount();
  });

  it('counts an event repeated inside one batch once', async () => {
    const e = makeEvent({ userId: 'repeated-in-batch', inputTokens: 11 });
    const res = await api.postEvents(ingestKey, { events: [e, e, { ...e }] });
    expect(res.status).toBe(202);
    expect(res.json()).toEqual({ accepted: 1, duplicates: 2, conflicts: 0 });
    counted.push(e);
    await expectTotalsMatchRecount();
  });

  it('claims no id of a refused request: fixed and re-sent, every event counts', async () => {
    const events = makeBatch('refused-first', 20, 4);
    const broken = events.map((e, i) => (i === 13 ? { ...e, outputTokens: -5 } : e));
    const refused = await api.postEvents(ingestKey, { events: broken });
    expect(refused.status).toBe(400);
    const res = await api.postEvents(ingestKey, { events });
    expect(res.status).toBe(202);
    expect(res.json()).toEqual({ accepted: 20, duplicates: 0, conflicts: 0 });
    counted.push(...events);
    await expectTotalsMatchRecount();
  });
});

describe('the same id with a different payload', () => {
  it('keeps the first payload, answers conflicts 1 and lists it in /v1/conflicts', async () => {
    const first = makeEvent({ userId: 'conflicted', inputTokens: 1000, outputTokens: 10 });
    const second = { ...first, inputTokens: 999_999, outputTokens: 77 };
    const a = await api.postEvents(ingestKey, first);
    expect(a.json()).toEqual({ accepted: 1, duplicates: 0, conflicts: 0 });
    const b = await api.postEvents(ingestKey, second);
    expect(b.status).toBe(202);
    expect(b.json()).toEqual({ accepted: 0, duplicates: 0, conflicts: 1 });
    // The identical first payload again is a plain duplicate, not a conflict.
    const c = await api.postEvents(ingestKey, first);
    expect(c.json()).toEqual({ accepted: 0, duplicates: 1, conflicts: 0 });
    counted.push(first);

    const conflicts = (await api.get('/v1/conflicts', adminKey)).json<{
      conflicts: Array<{
        eventId: string;
        firstFingerprint: string;
        conflictingFingerprint: string;
        seenAt: string;
      }>;
    }>().conflicts;
    const mine = conflicts.filter((x) => x.eventId === first.id);
    expect(mine).toHaveLength(1);
    expect(mine[0]?.firstFingerprint).not.toBe(mine[0]?.conflictingFingerprint);
    expect(Number.isNaN(Date.parse(mine[0]?.seenAt ?? ''))).toBe(false);
    const row = (await api.totalsByUser(adminKey)).get('conflicted');
    expect(row).toEqual(totalsOfEvent(first));
    await expectTotalsMatchRecount();
  });

  it('any changed field is a conflict: tags, status, timestamp, model', async () => {
    const base = makeEvent({ userId: 'conflicted-fields', tags: { team: 'a' } });
    expect((await api.postEvents(ingestKey, base)).json()).toMatchObject({ accepted: 1 });
    counted.push(base);
    const variants: WireEvent[] = [
      { ...base, tags: { team: 'b' } },
      { ...base, status: 'error' },
      { ...base, timestamp: new Date(Date.parse(String(base.timestamp)) - 1).toISOString() },
      { ...base, modelId: 'gpt-4o' },
    ];
    for (const v of variants) {
      const res = await api.postEvents(ingestKey, v);
      expect(res.json(), JSON.stringify(v)).toEqual({ accepted: 0, duplicates: 0, conflicts: 1 });
    }
    await expectTotalsMatchRecount();
  });

  it('a conflict inside one batch: the first in the batch wins', async () => {
    const first = makeEvent({ userId: 'conflict-in-batch', inputTokens: 5 });
    const res = await api.postEvents(ingestKey, {
      events: [first, { ...first, inputTokens: 6 }],
    });
    expect(res.json()).toEqual({ accepted: 1, duplicates: 0, conflicts: 1 });
    counted.push(first);
    await expectTotalsMatchRecount();
  });
});

describe('dedupe survives a restart', () => {
  it('after SIGTERM and a restart on the same data dir, re-sent events are duplicates', async () => {
    const exit = await server.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    server = await startServerProcess({ dataDir: server.dataDir });
    api = new TokenwatchApi(server.url);
    expect(server.adminKey).toBeUndefined(); // keys are printed on the first start only
    await expectTotalsMatchRecount();
    for (let i = 0; i < counted.length; i += 1000) {
      const chunk = counted.slice(i, i + 1000);
      const res = await api.postEvents(ingestKey, { events: chunk });
      expect(res.status).toBe(202);
      expect(res.json()).toEqual({ accepted: 0, duplicates: chunk.length, conflicts: 0 });
    }
    await expectTotalsMatchRecount();
    expect(sumEvents(counted).requests).toBeGreaterThan(500);
  });
});
