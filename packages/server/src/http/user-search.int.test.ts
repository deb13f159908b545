import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createKey,
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { makeEvent, TokenwatchApi, type WireEvent } from '../testing/tokenwatch-api.js';

/**
 * Issue 13, server-side user search, through the real `serve`: `GET /v1/users?prefix=` finds any
 * user of the range (not only the top 100), for read keys, with every bad parameter named.
 */
let server: ServerProcess;
let api: TokenwatchApi;
let read: string;

const USERS = Array.from({ length: 150 }, (_, i) => `user-${String(i).padStart(3, '0')}`);

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  read = (await createKey(server.dataDir, { role: 'read' })).key;
  const events: WireEvent[] = USERS.map((userId, i) =>
    makeEvent({ userId, inputTokens: 10_000 - i * 50, outputTokens: 0 }),
  );
  events.push(makeEvent({ userId: 'Zoë Ämter', inputTokens: 5 }));
  events.push(makeEvent({ userId: 'zoe_1', inputTokens: 6 }));
  const res = await api.postEvents(server.ingestKey as string, { events });
  expect(res.status, res.text).toBe(202);
});

afterAll(async () => {
  if (server) {
    await server.kill('SIGTERM');
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

const search = (query: string, key = read) => api.get(`/v1/users?${query}`, key);
const fieldsOf = (res: { json<T>(): T }) =>
  (res.json<{ error: { details?: { field: string }[] } }>().error.details ?? []).map(
    (d) => d.field,
  );

describe('GET /v1/users', () => {
  it('finds users past the top 100, most tokens first, and says when there are more', async () => {
    const top100 = await api.usageRows(read, { groupBy: 'user', limit: '100' });
    expect(top100.map((r) => r.user)).not.toContain('user-149');

    const one = await search('prefix=user-149');
    expect(one.status, one.text).toBe(200);
    const body = one.json();
    expect(body.users.map((u: { user: string }) => u.user)).toEqual(['user-149']);
    expect(body.users[0].totalTokens).toBe(10_000 - 149 * 50);
    expect(body.more).toBe(false);

    const page = (await search('prefix=user-1&limit=5')).json();
    expect(page.users.map((u: { user: string }) => u.user)).toEqual([
      'user-100',
      'user-101',
      'user-102',
      'user-103',
      'user-104',
    ]);
    expect(page.more).toBe(true);
    expect(page.query).toMatchObject({ prefix: 'user-1', limit: 5 });

    // Exact and case-sensitive: no wildcards, no folding.
    const zoe = (await search(`prefix=${encodeURIComponent('Zoë')}`)).json();
    expect(zoe.users.map((u: { user: string }) => u.user)).toEqual(['Zoë Ämter']);
    expect((await search('prefix=zoe_')).json().users).toHaveLength(1);
    expect((await search('prefix=zo%25')).json().users).toEqual([]);
    // A range without them finds none.
    expect((await search('prefix=user-&from=2020-01-01&to=2020-01-02')).json().users).toEqual([]);
  });

  it('read and admin keys only', async () => {
    expect((await search('prefix=u', '')).status).toBe(401);
    expect((await search('prefix=u', server.ingestKey as string)).status).toBe(403);
    expect((await search('prefix=u', server.adminKey as string)).status).toBe(200);
  });

  it('refuses bad parameters with a 400 naming each', async () => {
    const cases: [string, string][] = [
      ['', 'prefix'],
      ['prefix=', 'prefix'],
      ['prefix=u&limit=0', 'limit'],
      ['prefix=u&limit=1.5', 'limit'],
      ['prefix=u&limit=1001', 'limit'],
      ['prefix=u&from=yesterday', 'from'],
      ['prefix=u&from=2026-01-02&to=2026-01-01', 'from'],
      ['prefix=u&prefix=v', 'prefix'],
      [`prefix=${'x'.repeat(513)}`, 'prefix'],
      ['prefix=u&user=x', 'user'],
    ];
    for (const [query, field] of cases) {
      const res = await search(query);
      expect(res.status, `${query}: ${res.text}`).toBe(400);
      expect(fieldsOf(res), query).toContain(field);
    }
  });
});
