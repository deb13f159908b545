import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpResponse } from '../testing/http-client.js';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  addTotals,
  DAY_MS,
  makeEvent,
  newEventId,
  TokenwatchApi,
  type Totals,
  totalsOfEvent,
  type WireEvent,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, "Bad input": every malformed request gets its specific 4xx naming the event index,
 * the field and the reason; nothing of it is stored (checked through GET /v1/usage); and the
 * server answers the next good request. Valid but unusual ids are accepted byte-exact, once.
 * Runs against `tokenwatch serve` as a separate process over real HTTP.
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

interface ExpectedIssue {
  index?: number;
  field: string;
  reason: RegExp;
}

interface ApiError {
  error: {
    code: string;
    message: string;
    requestId: string;
    details?: Array<{ index?: number; field: string; reason: string }>;
  };
}

/** After a refusal: nothing more is stored, and the next good request is accepted and counted. */
async function expectStillServing(before: Totals): Promise<void> {
  expect(await api.storedTotals(adminKey)).toEqual(before);
  const good = makeEvent({ userId: 'next-good-request' });
  const res = await api.postEvents(ingestKey, good);
  expect(res.status).toBe(202);
  expect(res.json()).toEqual({ accepted: 1, duplicates: 0, conflicts: 0 });
  expect(await api.storedTotals(adminKey)).toEqual(addTotals(before, totalsOfEvent(good)));
}

/**
 * Sends a request that must be refused; checks status, error code, the issues (each naming
 * index, field and reason), that nothing was stored, and that the server still serves.
 */
async function expectRefused(
  send: () => Promise<HttpResponse>,
  expected: { status: number; code: string; issues?: ExpectedIssue[]; message?: RegExp },
): Promise<ApiError> {
  const before = await api.storedTotals(adminKey);
  const res = await send();
  expect(res.status, res.text).toBe(expected.status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<ApiError>();
  expect(body.error.code).toBe(expected.code);
  expect(body.error.requestId).toBe(res.headers['x-request-id']);
  if (expected.message) expect(body.error.message).toMatch(expected.message);
  for (const issue of expected.issues ?? []) {
    expect(body.error.details, res.text).toContainEqual(
      issue.index === undefined
        ? { field: issue.field, reason: expect.stringMatching(issue.reason) }
        : { index: issue.index, field: issue.field, reason: expect.stringMatching(issue.reason) },
    );
  }
  await expectStillServing(before);
  return body;
}

const post =
  (body: unknown, headers: Record<string, string> = {}) =>
  () =>
    api.postEvents(ingestKey, body, { headers });

/** A batch whose event 0 is valid and event 1 is `bad`: the whole request must be refused. */
const batchWithBad = (bad: Record<string, unknown>) => ({
  events: [makeEvent({ userId: 'valid-neighbour' }), { ...makeEvent(), ...bad }],
});

/** The JSON text of a batch of one valid event and one event with `field` set to raw JSON text. */
function rawBatch(field: string, rawValue: string): string {
  const { [field as keyof WireEvent]: _drop, ...rest } = makeEvent();
  const good = JSON.stringify(makeEvent({ userId: 'valid-neighbour' }));
  return `{"events":[${good},${JSON.stringify(rest).slice(0, -1)},"${field}":${rawValue}}]}`;
}

describe('malformed bodies', () => {
  it('refuses malformed JSON with 400 invalid_body', async () => {
    await expectRefused(post('{"events": [ {"id": "x",, } ]'), {
      status: 400,
      code: 'invalid_body',
      message: /not valid JSON/,
    });
  });

  it('refuses truncated JSON (a valid batch cut short) with 400 invalid_body', async () => {
    const text = JSON.stringify({ events: [makeEvent(), makeEvent()] });
    await expectRefused(post(text.slice(0, text.length - 9)), {
      status: 400,
      code: 'invalid_body',
      message: /not valid JSON/,
    });
  });

  it('refuses an empty body and a whitespace-only body with 400 invalid_body', async () => {
    await expectRefused(post(''), { status: 400, code: 'invalid_body', message: /empty/ });
    await expectRefused(post(' \n\t '), { status: 400, code: 'invalid_body', message: /empty/ });
  });

  it.each([
    ['null', 'null', /got null/],
    ['[]', '[]', /got an array/],
    ['an array of events', JSON.stringify([makeEvent()]), /got an array/],
    ['42', '42', /got a number/],
    ['"an event"', '"an event"', /got a string/],
    ['true', 'true', /got a boolean/],
  ])('refuses the JSON body %s with 400 naming the body', async (_label, text, reason) => {
    await expectRefused(post(text), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: '', reason }],
    });
  });

  it('refuses {"events": ...} that is not a non-empty array, or has siblings', async () => {
    await expectRefused(post({ events: 'all of them' }), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: 'events', reason: /must be an array/ }],
    });
    await expectRefused(post({ events: [] }), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: 'events', reason: /at least one/ }],
    });
    await expectRefused(post({ events: [makeEvent()], apiVersion: 2 }), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: 'apiVersion', reason: /not allowed/ }],
    });
  });

  it('refuses a batch of 1001 events with 400 (and accepts exactly 1000)', async () => {
    const events = Array.from({ length: 1001 }, (_, i) => makeEvent({ userId: `many-${i}` }));
    await expectRefused(post({ events }), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: 'events', reason: /at most 1000 events, got 1001/ }],
    });
    const res = await api.postEvents(ingestKey, { events: events.slice(0, 1000) });
    expect(res.status).toBe(202);
    expect(res.json()).toEqual({ accepted: 1000, duplicates: 0, conflicts: 0 });
  });

  it('refuses a batch element that is not an object, naming its index', async () => {
    await expectRefused(post({ events: [makeEvent(), 'event', null] }), {
      status: 400,
      code: 'invalid_event',
      issues: [
        { index: 1, field: '', reason: /must be an object, got a string/ },
        { index: 2, field: '', reason: /must be an object, got null/ },
      ],
    });
  });
});

describe('invalid events (atomic: the valid event next to it is not stored either)', () => {
  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ['userId as a number', { userId: 42 }, 'userId', /must be a string, got a number/],
    ['appId as an object', { appId: { name: 'chat' } }, 'appId', /must be a string/],
    ['modelId as an array', { modelId: ['gpt-4o'] }, 'modelId', /must be a string, got an array/],
    ['timestamp as a boolean', { timestamp: true }, 'timestamp', /RFC 3339.*got a boolean/],
    ['tags as a string', { tags: 'team=x' }, 'tags', /must be an object/],
    ['a tag value as a number', { tags: { team: 7 } }, 'tags.team', /must be a string/],
    ['an unknown status', { status: 'maybe' }, 'status', /"ok", "error", "no_usage", "denied"/],
    [
      'tokens on a denied call',
      { status: 'denied', inputTokens: 0 },
      'outputTokens',
      /must be 0 when/,
    ],
    ['latencyMs as a string', { latencyMs: 'fast' }, 'latencyMs', /milliseconds/],
    ['negative tokens', { outputTokens: -1 }, 'outputTokens', />= 0, got -1/],
    ['fractional tokens', { inputTokens: 1.5 }, 'inputTokens', /integer, got 1.5/],
    ['string tokens', { inputTokens: '100' }, 'inputTokens', /got a string/],
    ['null tokens', { cacheReadTokens: null }, 'cacheReadTokens', /got null/],
    ['tokens above 1e9', { cacheWriteTokens: 1_000_000_001 }, 'cacheWriteTokens', /at most/],
    ['an empty id', { id: '' }, 'id', /must not be empty/],
    ['an id of 10 KB', { id: 'i'.repeat(10_240) }, 'id', /at most 128 characters, got 10240/],
    ['a userId of 10 KB', { userId: 'u'.repeat(10_240) }, 'userId', /at most 256/],
    ['an id with a NUL byte', { id: 'evt\u0000x' }, 'id', /control characters/],
    ['a userId with a newline', { userId: 'eve\nINFO forged' }, 'userId', /control/],
    ['an unknown field', { prompt: 'secret text' }, 'prompt', /not a field/],
    ['a tag key with a space', { tags: { 'my team': 'x' } }, 'tags.my team', /key must be/],
    ['a reserved tag key', { tags: { constructor: 'x' } }, 'tags.constructor', /reserved/],
    [
      'a timestamp 36 days old',
      { timestamp: new Date(Date.now() - 36 * DAY_MS).toISOString() },
      'timestamp',
      /more than 35 days in the past/,
    ],
    [
      'a timestamp 6 minutes ahead',
      { timestamp: new Date(Date.now() + 6 * 60_000).toISOString() },
      'timestamp',
      /more than 5 minutes in the future/,
    ],
    [
      'an epoch-ms timestamp 36 days old',
      { timestamp: Date.now() - 36 * DAY_MS },
      'timestamp',
      /in the past/,
    ],
    [
      'a timestamp without a zone',
      { timestamp: new Date(Date.now() - 60_000).toISOString().slice(0, 19) },
      'timestamp',
      /time zone/,
    ],
    [
      'a timestamp in epoch seconds',
      { timestamp: Math.floor(Date.now() / 1000) },
      'timestamp',
      /epoch seconds/,
    ],
    ['an impossible date', { timestamp: '2026-02-30T10:00:00Z' }, 'timestamp', /calendar/],
  ])('%s → 400 naming index 1 and the field', async (_name, bad, field, reason) => {
    await expectRefused(post(batchWithBad(bad)), {
      status: 400,
      code: 'invalid_event',
      issues: [{ index: 1, field, reason }],
    });
  });

  it('refuses huge token counts sent as raw JSON numbers (> 2^53)', async () => {
    for (const raw of ['9007199254740993', '1e400', '123456789012345678901234567890']) {
      await expectRefused(post(rawBatch('inputTokens', raw)), {
        status: 400,
        code: 'invalid_event',
        issues: [{ index: 1, field: 'inputTokens', reason: /integer|at most/ }],
      });
    }
  });

  it('names every missing required field of an empty event', async () => {
    const body = await expectRefused(post({ events: [makeEvent(), {}] }), {
      status: 400,
      code: 'invalid_event',
      issues: [
        { index: 1, field: 'id', reason: /string/ },
        { index: 1, field: 'timestamp', reason: /required/ },
        { index: 1, field: 'userId', reason: /string/ },
        { index: 1, field: 'appId', reason: /string/ },
        { index: 1, field: 'modelId', reason: /string/ },
        { index: 1, field: 'inputTokens', reason: /integer/ },
        { index: 1, field: 'outputTokens', reason: /integer/ },
      ],
    });
    expect(body.error.details?.every((d) => d.index === 1)).toBe(true);
  });

  it('names the field of a single (unbatched) event without an index', async () => {
    const { outputTokens: _drop, ...event } = makeEvent();
    const body = await expectRefused(post(event), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: 'outputTokens', reason: /integer/ }],
    });
    expect(body.error.details?.[0]).not.toHaveProperty('index');
  });

  it('refuses __proto__ keys: in an event, in its tags, and next to "events"', async () => {
    const event = JSON.stringify(makeEvent()).slice(0, -1);
    // Raw text: JSON.parse makes "__proto__" an own property, as an attacker's body would.
    await expectRefused(post(`{"events":[${event},"__proto__":{"admin":true}}]}`), {
      status: 400,
      code: 'invalid_event',
      issues: [{ index: 0, field: '__proto__', reason: /not a field/ }],
    });
    await expectRefused(post(`${event},"__proto__":{"inputTokens":5}}`), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: '__proto__', reason: /not a field/ }],
    });
    await expectRefused(post(`{"events":[${event},"tags":{"__proto__":"x","team":"a"}}]}`), {
      status: 400,
      code: 'invalid_event',
      issues: [{ index: 0, field: 'tags.__proto__', reason: /reserved/ }],
    });
    await expectRefused(post(`{"__proto__":{"events":[]},"events":[${event}}]}`), {
      status: 400,
      code: 'invalid_event',
      issues: [{ field: '__proto__', reason: /not allowed next to "events"/ }],
    });
  });
});

describe('body size, encoding and type', () => {
  /** About 1.1 MiB of events that would be valid but for their size. */
  function oversizedBatch(): string {
    const tags: Record<string, string> = {};
    for (let i = 0; i < 16; i++) tags[`k${i}`] = 'v'.repeat(256);
    const events = Array.from({ length: 260 }, (_, i) => makeEvent({ userId: `big-${i}`, tags }));
    const text = JSON.stringify({ events });
    expect(Buffer.byteLength(text)).toBeGreaterThan(1024 * 1024);
    return text;
  }

  it('refuses a body over 1 MiB sent with a Content-Length with 413', async () => {
    await expectRefused(post(oversizedBatch()), {
      status: 413,
      code: 'payload_too_large',
    });
  });

  it('refuses a chunked body over 1 MiB (no Content-Length) with 413', async () => {
    const text = Buffer.from(oversizedBatch());
    const chunks: Buffer[] = [];
    for (let i = 0; i < text.length; i += 64 * 1024) chunks.push(text.subarray(i, i + 64 * 1024));
    await expectRefused(() => api.postChunked(ingestKey, chunks), {
      status: 413,
      code: 'payload_too_large',
    });
  });

  it('refuses a gzip bomb (small on the wire, over 1 MiB inflated) with 413', async () => {
    // Valid JSON once inflated: one event padded with 2 MiB of whitespace.
    const inflated = `{"events":[${' '.repeat(2 * 1024 * 1024)}${JSON.stringify(makeEvent())}]}`;
    const bomb = gzipSync(inflated, { level: 9 });
    expect(bomb.length).toBeLessThan(16 * 1024);
    await expectRefused(post(bomb, { 'content-encoding': 'gzip' }), {
      status: 413,
      code: 'payload_too_large',
    });
  });

  it('refuses a corrupt gzip body with 400 and an unknown Content-Encoding with 415', async () => {
    const gz = gzipSync(JSON.stringify(makeEvent()));
    await expectRefused(post(gz.subarray(0, gz.length - 12), { 'content-encoding': 'gzip' }), {
      status: 400,
      code: 'invalid_body',
    });
    await expectRefused(post(JSON.stringify(makeEvent()), { 'content-encoding': 'br' }), {
      status: 415,
      code: 'unsupported_media_type',
    });
    await expectRefused(post(JSON.stringify(makeEvent()), { 'content-encoding': 'deflate' }), {
      status: 415,
      code: 'unsupported_media_type',
    });
  });

  it('refuses a non-JSON Content-Type with 415', async () => {
    await expectRefused(post(JSON.stringify(makeEvent()), { 'content-type': 'text/html' }), {
      status: 415,
      code: 'unsupported_media_type',
    });
  });

  it('accepts a gzip body and counts it', async () => {
    const before = await api.storedTotals(adminKey);
    const events = Array.from({ length: 50 }, (_, i) =>
      makeEvent({ userId: `gz-${i % 5}`, cacheReadTokens: i }),
    );
    const res = await api.postEvents(ingestKey, gzipSync(JSON.stringify({ events })), {
      headers: { 'content-encoding': 'gzip' },
    });
    expect(res.status, res.text).toBe(202);
    expect(res.json()).toEqual({ accepted: 50, duplicates: 0, conflicts: 0 });
    const expected = events.reduce((acc, e) => addTotals(acc, totalsOfEvent(e)), before);
    expect(await api.storedTotals(adminKey)).toEqual(expected);
  });
});

describe('unusual but valid ids are accepted byte-exact and counted once', () => {
  /** Sends the events twice: accepted once, duplicates the second time; totals grow once. */
  async function expectCountedOnce(events: WireEvent[]): Promise<void> {
    const before = await api.storedTotals(adminKey);
    const first = await api.postEvents(ingestKey, { events });
    expect(first.status, first.text).toBe(202);
    expect(first.json()).toEqual({ accepted: events.length, duplicates: 0, conflicts: 0 });
    const again = await api.postEvents(ingestKey, { events });
    expect(again.status).toBe(202);
    expect(again.json()).toEqual({ accepted: 0, duplicates: events.length, conflicts: 0 });
    const expected = events.reduce((acc, e) => addTotals(acc, totalsOfEvent(e)), before);
    expect(await api.storedTotals(adminKey)).toEqual(expected);
  }

  /** Re-sends the id with another payload: the conflict report must give the id back exactly. */
  async function expectIdRoundTrips(event: WireEvent): Promise<void> {
    const changed = { ...event, outputTokens: event.outputTokens + 1 };
    const res = await api.postEvents(ingestKey, changed);
    expect(res.status).toBe(202);
    expect(res.json()).toEqual({ accepted: 0, duplicates: 0, conflicts: 1 });
    const conflicts = await api.get('/v1/conflicts?limit=1000', adminKey);
    expect(conflicts.status).toBe(200);
    const ids = conflicts.json<{ conflicts: Array<{ eventId: string }> }>().conflicts;
    expect(ids.map((c) => c.eventId)).toContain(event.id);
  }

  it('accepts unicode ids, keeping NFC and NFD spellings apart', async () => {
    const nfc = 'caf\u00e9-evt';
    const nfd = 'cafe\u0301-evt';
    const events = [
      makeEvent({ id: nfc, userId: 'ünïcødé' }),
      makeEvent({ id: nfd, userId: 'ünïcødé' }),
      makeEvent({ id: '日本語の-イベント-🎉', userId: '用户-🚀' }),
      makeEvent({ id: 'Ω≈ç√∫-𝔘𝔫𝔦𝔠𝔬𝔡𝔢', userId: 'ünïcødé' }),
      makeEvent({ id: 'مرحبا-עברית', userId: '用户-🚀' }),
    ];
    await expectCountedOnce(events);
    const byUser = await api.totalsByUser(adminKey, { user: ['ünïcødé', '用户-🚀'] });
    expect(byUser.get('ünïcødé')?.requests).toBe(3);
    expect(byUser.get('用户-🚀')?.requests).toBe(2);
    await expectIdRoundTrips(events[2] as WireEvent);
    await expectIdRoundTrips(events[1] as WireEvent);
  });

  it('accepts SQL-looking ids and user ids as plain data', async () => {
    const events = [
      makeEvent({
        id: "'; DROP TABLE event_ids;--",
        userId: "Robert'); DROP TABLE rollup_hour;--",
      }),
      makeEvent({ id: '" OR 1=1 --', userId: "' OR '1'='1" }),
      makeEvent({ id: '1; DELETE FROM api_keys', userId: 'x%_\\' }),
    ];
    await expectCountedOnce(events);
    const byUser = await api.totalsByUser(adminKey, {
      user: ["Robert'); DROP TABLE rollup_hour;--", "' OR '1'='1", 'x%_\\'],
    });
    expect([...byUser.keys()].sort()).toEqual(
      ["' OR '1'='1", "Robert'); DROP TABLE rollup_hour;--", 'x%_\\'].sort(),
    );
    // A LIKE-style wildcard in a filter matches only itself.
    expect((await api.totalsByUser(adminKey, { user: '%' })).size).toBe(0);
    await expectIdRoundTrips(events[0] as WireEvent);
    // Keys, tables and the rest still work.
    expect((await api.get('/v1/keys', adminKey)).status).toBe(200);
  });

  it('accepts an id of exactly 128 characters', async () => {
    await expectCountedOnce([makeEvent({ id: `${newEventId()}-${'x'.repeat(91)}` })]);
  });

  it('a lone UTF-16 surrogate in an id or user is refused (400) or round-trips unchanged', async () => {
    // JSON allows "\ud800"; it is not valid Unicode and SQLite stores it as invalid UTF-8.
    const text = JSON.stringify({
      events: [makeEvent({ userId: 'lone-A' }), makeEvent({ userId: 'lone-B' })],
    })
      .replace('"lone-A"', '"lone-\\ud800"')
      .replace('"lone-B"', '"lone-\\udbff"');
    const before = await api.storedTotals(adminKey);
    const res = await api.postEvents(ingestKey, text);
    if (res.status === 400) {
      expect(res.json<ApiError>().error.details).toContainEqual({
        index: 0,
        field: 'userId',
        reason: expect.any(String),
      });
      await expectStillServing(before);
      return;
    }
    expect(res.status).toBe(202);
    const rows = await api.usageRows(adminKey, { groupBy: 'user', limit: '10000' });
    const users = rows.map((r) => r.user as string).filter((u) => u.startsWith('lone-'));
    // Two distinct users went in; they must come back as sent, not as two identical rows.
    expect(users.sort()).toEqual(['lone-\ud800', 'lone-\udbff'].sort());
  });
});
