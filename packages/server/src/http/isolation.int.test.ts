import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKey,
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  makeEvent,
  pickTotals,
  sumByUser,
  sumEvents,
  TokenwatchApi,
  type WireEvent,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, "Project isolation": a key of project A never sees project B's usage, whatever it puts
 * in the query. Both projects use the same event ids and user names; B's data carries a canary
 * string that must never appear in any answer given to A.
 */

const CANARY = 'CANARY-b-7f3e9a';

let server: ServerProcess;
let api: TokenwatchApi;
/** Project A is the default project of the first start. */
let adminA: string;
let ingestA: string;
let adminB: string;
let ingestB: string;
let keyIdB: string;
const eventsA: WireEvent[] = [];
const eventsB: WireEvent[] = [];

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  adminA = server.adminKey as string;
  ingestA = server.ingestKey as string;
  const b = await createKey(server.dataDir, { role: 'admin', project: 'b' });
  adminB = b.key;
  keyIdB = b.id;
  ingestB = (await createKey(server.dataDir, { role: 'ingest', project: 'b' })).key;

  for (let i = 0; i < 40; i++) {
    const id = `shared-id-${i}`;
    eventsA.push(
      makeEvent({
        id,
        userId: i % 2 ? 'alice' : 'bob',
        appId: 'chat',
        tags: { team: 'x' },
        inputTokens: 100 + i,
        latencyMs: 300 + i,
      }),
    );
    // Same ids and user names in B, other numbers, and the canary everywhere it can go.
    eventsB.push(
      makeEvent({
        id,
        userId: i % 3 === 0 ? CANARY : i % 2 ? 'alice' : 'bob',
        appId: i % 4 === 0 ? `${CANARY}-app` : 'chat',
        modelId: i % 5 === 0 ? `${CANARY}-model` : 'gpt-4o-mini',
        provider: i % 5 === 0 ? 'acme' : 'openai',
        tags: { team: i % 2 ? `${CANARY}-team` : 'x', [`${CANARY.toLowerCase()}`]: 'y' },
        inputTokens: 100_000 + i * 7,
        outputTokens: 5000 + i,
        latencyMs: 50_000 + i,
      }),
    );
  }
  const a = await api.postEvents(ingestA, { events: eventsA });
  expect(a.json()).toEqual({ accepted: 40, duplicates: 0, conflicts: 0 });
  // The same ids in another project are new events there, not duplicates.
  const b2 = await api.postEvents(ingestB, { events: eventsB });
  expect(b2.json()).toEqual({ accepted: 40, duplicates: 0, conflicts: 0 });
  // A conflict in B (same id, other payload) stays B's.
  const conflict = await api.postEvents(ingestB, { ...eventsB[1], outputTokens: 1 });
  expect(conflict.json()).toEqual({ accepted: 0, duplicates: 0, conflicts: 1 });
  // A price override in B stays B's.
  const put = await api.request('/v1/prices', {
    method: 'PUT',
    headers: { authorization: `Bearer ${adminB}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      provider: 'openai',
      modelId: 'gpt-4o-mini',
      input: '999',
      output: '999',
    }),
  });
  expect(put.status, put.text).toBe(200);
});

afterAll(async () => {
  if (server) {
    await server.kill('SIGTERM');
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

/** Every query shape A might try, B's names included. */
const QUERIES: Array<Record<string, string | string[]>> = [
  {},
  { groupBy: 'user' },
  { groupBy: 'app' },
  { groupBy: 'model' },
  { groupBy: 'provider' },
  { groupBy: 'user,app,model,provider' },
  { groupBy: 'tag:team' },
  { groupBy: `tag:${CANARY.toLowerCase()}` },
  { groupBy: 'user', interval: 'hour' },
  { groupBy: 'model', interval: 'day' },
  { interval: 'month' },
  { groupBy: 'user', user: CANARY },
  { groupBy: 'user', user: ['alice', 'bob', CANARY] },
  { groupBy: 'user', userId: CANARY },
  { groupBy: 'app', app: `${CANARY}-app` },
  { groupBy: 'model', model: `${CANARY}-model` },
  { groupBy: 'provider', provider: 'acme' },
  { 'tag.team': `${CANARY}-team` },
  { groupBy: 'user', 'tag.team': 'x' },
  { [`tag.${CANARY.toLowerCase()}`]: 'y' },
  { groupBy: 'user', orderBy: 'totalTokens', order: 'desc', limit: '1' },
  { groupBy: 'user', orderBy: 'costUsd', limit: '10000' },
  { groupBy: 'user', format: 'csv' },
];

describe("A's queries never return B's usage", () => {
  it.each(QUERIES)("GET /v1/usage %j with A's key", async (params) => {
    for (const headers of [{}, { accept: 'text/csv' }, { 'x-project-id': 'b' }]) {
      const res = await api.usage(adminA, params, { headers });
      expect(res.status, res.text).toBe(200);
      // What A sent is echoed back (the query, the CSV header); the data must not hold B's.
      const data = /^text\/csv/.test(String(res.headers['content-type']))
        ? res.text.slice(res.text.indexOf('\r\n'))
        : JSON.stringify(res.json<{ rows: unknown[] }>().rows);
      expect(data).not.toContain(CANARY);
      expect(data).not.toContain(CANARY.toLowerCase());
      if (!JSON.stringify(params).toLowerCase().includes(CANARY.toLowerCase())) {
        expect(res.text).not.toContain(CANARY);
        expect(res.text).not.toContain(CANARY.toLowerCase());
      }
    }
  });

  it.each([
    { groupBy: 'user' },
    { groupBy: 'model', user: CANARY },
    { groupBy: 'app,model,provider' },
    { groupBy: 'user', interval: 'day' },
    { model: `${CANARY}-model` },
  ])("GET /v1/latency %j with A's key", async (params) => {
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) search.set(k, v);
    for (const headers of [{}, { 'x-project-id': 'b' }]) {
      const res = await api.get(`/v1/latency?${search}`, adminA, headers);
      expect(res.status, res.text).toBe(200);
      const body = res.json<{ rows: Array<{ timedRequests: number; p95Ms: number }> }>();
      const rows = JSON.stringify(body.rows);
      // A's 40 timed calls (300–339 ms), none of B's (50 s).
      const filtered = 'user' in params || 'model' in params;
      expect(body.rows.reduce((n, r) => n + r.timedRequests, 0)).toBe(filtered ? 0 : 40);
      for (const r of body.rows) expect(r.p95Ms).toBeLessThanOrEqual(400);
      expect(rows).not.toContain(CANARY);
      expect(rows).not.toContain(CANARY.toLowerCase());
    }
  });

  it("A's totals and per-user numbers are A's recount, not A+B", async () => {
    expect(await api.storedTotals(adminA)).toEqual(sumEvents(eventsA));
    expect(await api.totalsByUser(adminA)).toEqual(sumByUser(eventsA));
    // Same user names in both projects: filtering on them still gives A's numbers only.
    const alice = await api.usageRows(adminA, { groupBy: 'user', user: 'alice' });
    expect(alice.map(pickTotals)).toEqual([sumByUser(eventsA).get('alice')]);
    expect(await api.usageRows(adminA, { groupBy: 'user', user: CANARY })).toEqual([]);
    expect(await api.usageRows(adminA, { 'tag.team': `${CANARY}-team` })).toEqual([]);
  });

  it("B's numbers and B's price override are B's own", async () => {
    expect(await api.storedTotals(adminB)).toEqual(sumEvents(eventsB));
    expect(await api.totalsByUser(adminB)).toEqual(sumByUser(eventsB));
    // B's override (999 USD per 1M) did not touch A's later events.
    const later = makeEvent({
      userId: 'after-b-override',
      inputTokens: 1_000_000,
      outputTokens: 0,
    });
    expect((await api.postEvents(ingestA, later)).status).toBe(202);
    const [row] = await api.usageRows(adminA, { groupBy: 'user', user: 'after-b-override' });
    expect(row?.costNanoUsd).toBe('150000000'); // gpt-4o-mini input, 0.15 USD per 1M
  });

  it('a project parameter is refused, not obeyed', async () => {
    for (const name of ['projectId', 'project', 'tenant', 'project_id']) {
      const res = await api.usage(adminA, { [name]: 'b', groupBy: 'user' });
      expect(res.status).toBe(400);
      expect(res.text).not.toContain(CANARY);
    }
  });

  it("conflicts, keys, prices and whoami show A's only", async () => {
    for (const path of ['/v1/conflicts', '/v1/keys', '/v1/prices', '/v1/whoami', '/metrics']) {
      const res = await api.get(path, adminA);
      expect(res.status, path).toBe(200);
      expect(res.text, path).not.toContain(CANARY);
      expect(res.text, path).not.toContain(keyIdB);
    }
    const conflicts = (await api.get('/v1/conflicts', adminA)).json<{ conflicts: unknown[] }>();
    expect(conflicts.conflicts).toEqual([]);
    const prices = (await api.get('/v1/prices', adminA)).json<{ overrides: unknown[] }>();
    expect(prices.overrides).toEqual([]);
    const who = (await api.get('/v1/whoami', adminA)).json<{ projectId: string }>();
    expect(who.projectId).toBe('default');
    // B sees its conflict.
    const inB = (await api.get('/v1/conflicts', adminB)).json<{
      conflicts: Array<{ eventId: string }>;
    }>();
    expect(inB.conflicts.map((c) => c.eventId)).toEqual(['shared-id-1']);
  });

  it("A's admin cannot revoke B's key", async () => {
    const del = await api.request(`/v1/keys/${keyIdB}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${adminA}` },
    });
    expect(del.status).toBe(404);
    expect((await api.usage(adminB)).status).toBe(200);
  });

  it("re-sending A's ids in B and B's in A are duplicates only within each project", async () => {
    const a = await api.postEvents(ingestA, { events: eventsA });
    expect(a.json()).toEqual({ accepted: 0, duplicates: 40, conflicts: 0 });
    expect(await api.storedTotals(adminA, { user: ['alice', 'bob'] })).toEqual(sumEvents(eventsA));
  });
});
