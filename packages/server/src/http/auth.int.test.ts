import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpResponse } from '../testing/http-client.js';
import {
  createKey,
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  addTotals,
  makeEvent,
  TokenwatchApi,
  type Totals,
  totalsOfEvent,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, authentication and authorisation of the HTTP API against the real server process:
 * 401 for a missing, malformed, unknown or revoked key; 403 for a key whose role or app binding
 * does not allow the request; and nothing stored by any refused request.
 */

let server: ServerProcess;
let api: TokenwatchApi;
let ingestKey: string;
let adminKey: string;

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  ingestKey = server.ingestKey as string;
  adminKey = server.adminKey as string;
});

afterAll(async () => {
  if (server) {
    const exit = await server.kill('SIGTERM');
    expect(exit.code).toBe(0);
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

interface ApiError {
  error: { code: string; message: string; details?: Array<{ index?: number; field: string }> };
}

async function expectNothingStoredBy(
  send: () => Promise<HttpResponse>,
  status: number,
  code: string,
): Promise<HttpResponse> {
  const before = await api.storedTotals(adminKey);
  const res = await send();
  expect(res.status, res.text).toBe(status);
  expect(res.json<ApiError>().error.code).toBe(code);
  if (status === 401) expect(res.headers['www-authenticate']).toBe('Bearer');
  expect(await api.storedTotals(adminKey)).toEqual(before);
  // The server still takes the next good request.
  const good = makeEvent({ userId: 'after-refusal' });
  const ok = await api.postEvents(ingestKey, good);
  expect(ok.status).toBe(202);
  expect(await api.storedTotals(adminKey)).toEqual(addTotals(before, totalsOfEvent(good)));
  return res;
}

const unknownKey = () => `twk_${randomBytes(30).toString('base64url').slice(0, 40)}`;

describe('401: who is calling is unknown', () => {
  it('refuses events without an Authorization header', async () => {
    await expectNothingStoredBy(
      () => api.postEvents(undefined, makeEvent()),
      401,
      'unauthenticated',
    );
  });

  it('refuses a malformed Authorization header', async () => {
    for (const header of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer ', ingestKey, `Bearer a b`]) {
      await expectNothingStoredBy(
        () => api.postEvents(undefined, makeEvent(), { headers: { authorization: header } }),
        401,
        'unauthenticated',
      );
    }
  });

  it('refuses an unknown key, on ingest and on reads', async () => {
    await expectNothingStoredBy(
      () => api.postEvents(unknownKey(), makeEvent()),
      401,
      'unauthenticated',
    );
    const read = await api.usage(unknownKey());
    expect(read.status).toBe(401);
    const noKey = await api.usage(undefined);
    expect(noKey.status).toBe(401);
    expect(noKey.text).not.toContain('rows');
  });

  it('checks the key before looking at the body', async () => {
    await expectNothingStoredBy(
      () => api.postEvents(unknownKey(), '{"events": [ not json'),
      401,
      'unauthenticated',
    );
  });

  it('refuses a key after DELETE /v1/keys/:id revoked it', async () => {
    const ingest = await createKey(server.dataDir, { role: 'ingest' });
    const read = await createKey(server.dataDir, { role: 'read' });
    const first = makeEvent({ userId: 'before-revocation' });
    expect((await api.postEvents(ingest.key, first)).status).toBe(202);
    expect((await api.usage(read.key)).status).toBe(200);

    for (const k of [ingest, read]) {
      const del = await api.request(`/v1/keys/${k.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${adminKey}` },
      });
      expect(del.status, del.text).toBe(200);
      expect(del.json()).toEqual({ id: k.id, revoked: true });
    }

    await expectNothingStoredBy(
      () => api.postEvents(ingest.key, makeEvent({ userId: 'after-revocation' })),
      401,
      'unauthenticated',
    );
    expect((await api.usage(read.key)).status).toBe(401);
    const users = await api.totalsByUser(adminKey);
    expect(users.get('before-revocation')?.requests).toBe(1);
    expect(users.has('after-revocation')).toBe(false);
    // Revoking it again is not a server error.
    const again = await api.request(`/v1/keys/${ingest.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect([200, 404]).toContain(again.status);
    // The listing shows it revoked.
    const keys = (await api.get('/v1/keys', adminKey)).json<{
      keys: Array<{ id: string; revokedAt: string | null }>;
    }>().keys;
    expect(keys.find((k) => k.id === ingest.id)?.revokedAt).not.toBeNull();
  });

  it('an ingest key cannot revoke keys', async () => {
    const victim = await createKey(server.dataDir, { role: 'ingest' });
    const del = await api.request(`/v1/keys/${victim.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${ingestKey}` },
    });
    expect(del.status).toBe(403);
    expect((await api.postEvents(victim.key, makeEvent())).status).toBe(202);
  });
});

describe('403: the key may not do this', () => {
  it('an ingest key cannot read usage, keys, conflicts or set prices', async () => {
    for (const path of ['/v1/usage', '/v1/latency', '/v1/keys', '/v1/conflicts', '/v1/prices']) {
      const res = await api.get(path, ingestKey);
      expect(res.status, path).toBe(403);
      expect(res.json<ApiError>().error.code).toBe('forbidden');
    }
    const put = await api.request('/v1/prices', {
      method: 'PUT',
      headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'openai', modelId: 'gpt-4o-mini', input: '0', output: '0' }),
    });
    expect(put.status).toBe(403);
  });

  it('a read key cannot send events, but can read', async () => {
    const read = await createKey(server.dataDir, { role: 'read' });
    await expectNothingStoredBy(
      () => api.postEvents(read.key, makeEvent({ userId: 'read-key-writer' })),
      403,
      'forbidden',
    );
    expect((await api.usage(read.key, { groupBy: 'user' })).status).toBe(200);
    expect((await api.get('/v1/keys', read.key)).status).toBe(403);
  });

  it('an ingest key bound to app "chat" cannot send for app "search"', async () => {
    const bound = await createKey(server.dataDir, { role: 'ingest', app: 'chat' });
    const res = await expectNothingStoredBy(
      () => api.postEvents(bound.key, makeEvent({ appId: 'search', userId: 'bound-user' })),
      403,
      'forbidden',
    );
    expect(res.json<ApiError>().error.details).toContainEqual({
      field: 'appId',
      reason: expect.stringContaining('"chat"'),
    });
    // One event for another app spoils the whole batch.
    const mixed = await expectNothingStoredBy(
      () =>
        api.postEvents(bound.key, {
          events: [
            makeEvent({ appId: 'chat', userId: 'bound-user' }),
            makeEvent({ appId: 'search', userId: 'bound-user' }),
          ],
        }),
      403,
      'forbidden',
    );
    expect(mixed.json<ApiError>().error.details).toContainEqual(
      expect.objectContaining({ index: 1, field: 'appId' }),
    );
  });

  it('a bound key that omits appId writes for its app; naming its own app is fine too', async () => {
    const bound = await createKey(server.dataDir, { role: 'ingest', app: 'chat' });
    const { appId: _omit, ...withoutApp } = makeEvent({ userId: 'bound-omits-app' });
    const named = makeEvent({ userId: 'bound-omits-app', appId: 'chat', inputTokens: 7 });
    const res = await api.postEvents(bound.key, { events: [withoutApp, named] });
    expect(res.status, res.text).toBe(202);
    expect(res.json()).toEqual({ accepted: 2, duplicates: 0, conflicts: 0 });
    const rows = await api.usageRows(adminKey, { groupBy: 'user,app', user: 'bound-omits-app' });
    expect(rows.map((r) => [r.user, r.app, r.requests])).toEqual([['bound-omits-app', 'chat', 2]]);
  });

  it('an unbound ingest key without appId is a 400 naming appId', async () => {
    const { appId: _omit, ...withoutApp } = makeEvent();
    const res = await api.postEvents(ingestKey, withoutApp);
    expect(res.status).toBe(400);
    expect(res.json<ApiError>().error.details).toContainEqual(
      expect.objectContaining({ field: 'appId' }),
    );
  });
});

describe('malformed paths', () => {
  it('a malformed percent-escape in a path parameter is a 4xx, not a 500', async () => {
    for (const key of [adminKey, undefined]) {
      for (const id of ['%E0%A4%A', '%zz', 'key_%']) {
        const res = await api.request(`/v1/keys/${id}`, {
          method: 'DELETE',
          headers: key === undefined ? {} : { authorization: `Bearer ${key}` },
        });
        expect(res.status, `${id}: ${res.text}`).toBeGreaterThanOrEqual(400);
        expect(res.status, `${id}: ${res.text}`).toBeLessThan(500);
      }
    }
    expect((await api.get('/healthz')).status).toBe(200);
  });
});

describe('the role matrix is enforced with the keys the first start printed', () => {
  it('admin reads and writes, ingest writes only', async () => {
    const before: Totals = await api.storedTotals(adminKey);
    const e = makeEvent({ userId: 'admin-writer' });
    expect((await api.postEvents(adminKey, e)).status).toBe(202);
    expect(await api.storedTotals(adminKey)).toEqual(addTotals(before, totalsOfEvent(e)));
    const who = (await api.get('/v1/whoami', ingestKey)).json<{
      role: string;
      projectId: string;
    }>();
    expect(who).toMatchObject({ role: 'ingest', projectId: 'default' });
  });
});
