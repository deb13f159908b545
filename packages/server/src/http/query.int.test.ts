import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  DAY_MS,
  HOUR_MS,
  newEventId,
  seededRandom,
  TokenwatchApi,
  type UsageRowJson,
  type WireEvent,
  wholeWindow,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, query API: `GET /v1/usage` with every group-by combination, intervals, filters, tag
 * filters and tag groups, ordering and top-N, CSV export, and refusals of unknown names. Each
 * answer is compared with a recount of the events sent (a reference implementation in this file),
 * against `tokenwatch serve` over HTTP.
 */

let server: ServerProcess;
let api: TokenwatchApi;
let adminKey: string;
const events: WireEvent[] = [];
const NOW = Date.now();

const USERS = [
  'alice',
  'bob',
  'carol',
  'dave',
  'erin',
  '=HYPERLINK("http://evil.example","click")',
  '+SUM(A1:A9)',
  '@cmd',
  '-2+3',
];
const APPS = ['chat', 'search', 'batch'];
const MODELS: Array<[string, string]> = [
  ['gpt-4o-mini', 'openai'],
  ['anthropic.claude-3-haiku-20240307-v1:0', 'bedrock'],
  ['claude-sonnet-4-5-20250929', 'anthropic'],
  ['acme-frontier-9000', 'acme'], // unpriced
];
const UNPRICED_PROVIDERS = new Set(['acme']);

function makeDataset(): WireEvent[] {
  const rnd = seededRandom(7);
  const out: WireEvent[] = [];
  // Ages from a minute to 34 days, so hours, days and (usually) two months are covered.
  const ages = [
    60_000,
    5 * 60_000,
    50 * 60_000,
    2 * HOUR_MS,
    5 * HOUR_MS,
    26 * HOUR_MS,
    3 * DAY_MS,
    9 * DAY_MS,
    20 * DAY_MS,
    34 * DAY_MS,
  ];
  for (let i = 0; i < 400; i++) {
    const age = (ages[i % ages.length] as number) + Math.floor(rnd() * 40 * 60_000);
    const ts = NOW - Math.min(age, 34 * DAY_MS + HOUR_MS);
    const [modelId, provider] = MODELS[Math.floor(rnd() * MODELS.length)] as [string, string];
    const tagRoll = rnd();
    const tags: Record<string, string> | undefined =
      tagRoll < 0.3
        ? { team: 'a' }
        : tagRoll < 0.5
          ? { team: 'b', env: 'prod' }
          : tagRoll < 0.6
            ? { env: 'prod' }
            : tagRoll < 0.7
              ? { team: 'c' }
              : undefined;
    out.push({
      id: newEventId(ts),
      timestamp: new Date(ts).toISOString(),
      userId: USERS[Math.floor(rnd() * USERS.length)] as string,
      appId: APPS[Math.floor(rnd() * APPS.length)] as string,
      modelId,
      provider,
      inputTokens: Math.floor(rnd() * 10_000),
      outputTokens: Math.floor(rnd() * 3000),
      cacheReadTokens: rnd() < 0.4 ? Math.floor(rnd() * 50_000) : 0,
      cacheWriteTokens: rnd() < 0.2 ? Math.floor(rnd() * 5000) : 0,
      status: rnd() < 0.1 ? 'error' : 'ok',
      ...(tags ? { tags } : {}),
    });
  }
  return out;
}

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  adminKey = server.adminKey as string;
  events.push(...makeDataset());
  const res = await api.postEvents(server.ingestKey, { events });
  expect(res.status, res.text).toBe(202);
  expect(res.json()).toEqual({ accepted: events.length, duplicates: 0, conflicts: 0 });
});

afterAll(async () => {
  if (server) {
    await server.kill('SIGTERM');
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

// ---------------------------------------------------------------------------------------------
// The reference: what GET /v1/usage must answer, recounted from the events.

type Interval = 'minute' | 'hour' | 'day' | 'month';
const MEASURES = [
  'inputTokens',
  'outputTokens',
  'cacheReadTokens',
  'cacheWriteTokens',
  'totalTokens',
  'requests',
  'errors',
  'unpricedTokens',
  'unpricedRequests',
] as const;
type Measure = (typeof MEASURES)[number];
type Row = Record<string, string | number>;

interface RefQuery {
  groupBy?: string[];
  interval?: Interval;
  fromMs?: number;
  toMs?: number;
  filters?: Partial<Record<'user' | 'app' | 'model' | 'provider', string[]>>;
  tag?: { key: string; value: string };
  orderBy?: Measure | 'bucket';
  order?: 'asc' | 'desc';
  limit?: number;
}

function bucketStart(ms: number, unit: Interval): number {
  if (unit === 'month') {
    const d = new Date(ms);
    return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  }
  const size = unit === 'minute' ? 60_000 : unit === 'hour' ? HOUR_MS : DAY_MS;
  return ms - (ms % size);
}

function dimValue(e: WireEvent, dim: string): string | undefined {
  if (dim === 'user') return e.userId;
  if (dim === 'app') return e.appId;
  if (dim === 'model') return e.modelId;
  if (dim === 'provider') return e.provider;
  if (dim.startsWith('tag:')) return e.tags?.[dim.slice(4)];
  throw new Error(dim);
}

/** SQLite compares TEXT as UTF-8 bytes. */
function byteCompare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

function reference(q: RefQuery): Row[] {
  const w = wholeWindow(NOW);
  const fromMs = q.fromMs ?? Date.parse(w.from);
  const toMs = q.toMs ?? Date.parse(w.to);
  const groupBy = q.groupBy ?? [];
  const resolution: Interval =
    q.interval === 'minute'
      ? 'minute'
      : q.interval === 'day' || q.interval === 'month'
        ? 'day'
        : q.interval === 'hour'
          ? 'hour'
          : fromMs % DAY_MS === 0 && toMs % DAY_MS === 0
            ? 'day'
            : 'hour';
  const tagKey = groupBy.find((g) => g.startsWith('tag:'))?.slice(4) ?? q.tag?.key;
  const groups = new Map<string, Row>();
  for (const e of events) {
    const ms = Date.parse(String(e.timestamp));
    const start = bucketStart(ms, resolution);
    if (start < fromMs || start >= toMs) continue;
    if (tagKey !== undefined && e.tags?.[tagKey] === undefined) continue;
    if (q.tag && e.tags?.[q.tag.key] !== q.tag.value) continue;
    let keep = true;
    for (const [dim, values] of Object.entries(q.filters ?? {})) {
      if (values && !values.includes(dimValue(e, dim) as string)) keep = false;
    }
    if (!keep) continue;
    const row: Row = {};
    for (const dim of groupBy) row[dim] = dimValue(e, dim) as string;
    if (q.interval) row.bucket = new Date(bucketStart(ms, q.interval)).toISOString();
    const key = JSON.stringify(row);
    const acc = groups.get(key) ?? { ...row, ...Object.fromEntries(MEASURES.map((m) => [m, 0])) };
    const cr = e.cacheReadTokens ?? 0;
    const cw = e.cacheWriteTokens ?? 0;
    const total = e.inputTokens + e.outputTokens + cr + cw;
    const unpriced = UNPRICED_PROVIDERS.has(e.provider ?? '');
    const add = (m: Measure, v: number) => {
      acc[m] = (acc[m] as number) + v;
    };
    add('inputTokens', e.inputTokens);
    add('outputTokens', e.outputTokens);
    add('cacheReadTokens', cr);
    add('cacheWriteTokens', cw);
    add('totalTokens', total);
    add('requests', 1);
    add('errors', e.status === 'error' ? 1 : 0);
    add('unpricedTokens', unpriced ? total : 0);
    add('unpricedRequests', unpriced ? 1 : 0);
    groups.set(key, acc);
  }
  const orderBy = q.orderBy ?? (q.interval ? 'bucket' : 'totalTokens');
  const dir = (q.order ?? (orderBy === 'bucket' ? 'asc' : 'desc')) === 'asc' ? 1 : -1;
  const rows = [...groups.values()].sort((a, b) => {
    const primary =
      orderBy === 'bucket'
        ? byteCompare(String(a.bucket), String(b.bucket))
        : (a[orderBy] as number) - (b[orderBy] as number);
    if (primary !== 0) return dir * primary;
    for (const dim of groupBy) {
      const c = byteCompare(String(a[dim]), String(b[dim]));
      if (c !== 0) return c;
    }
    return q.interval ? byteCompare(String(a.bucket), String(b.bucket)) : 0;
  });
  return rows.slice(0, q.limit ?? 1000);
}

/** The API rows reduced to dimensions, bucket and recountable measures. */
function comparable(rows: UsageRowJson[], groupBy: string[], interval: boolean): Row[] {
  return rows.map((r) => {
    const out: Row = {};
    const json = r as unknown as Record<string, string | number>;
    for (const dim of groupBy) out[dim] = json[dim] as string;
    if (interval) out.bucket = r.bucket as string;
    for (const m of MEASURES) out[m] = json[m] as number;
    return out;
  });
}

function toParams(q: RefQuery): [string, string][] {
  const p: [string, string][] = [];
  if (q.groupBy?.length) p.push(['groupBy', q.groupBy.join(',')]);
  if (q.interval) p.push(['interval', q.interval]);
  if (q.fromMs !== undefined) p.push(['from', new Date(q.fromMs).toISOString()]);
  if (q.toMs !== undefined) p.push(['to', new Date(q.toMs).toISOString()]);
  for (const [dim, values] of Object.entries(q.filters ?? {})) {
    for (const v of values ?? []) p.push([dim, v]);
  }
  if (q.tag) p.push([`tag.${q.tag.key}`, q.tag.value]);
  if (q.orderBy) p.push(['orderBy', q.orderBy]);
  if (q.order) p.push(['order', q.order]);
  if (q.limit !== undefined) p.push(['limit', String(q.limit)]);
  return p;
}

async function expectMatchesReference(q: RefQuery): Promise<UsageRowJson[]> {
  const rows = await api.usageRows(adminKey, toParams(q));
  const expected = reference(q);
  expect(expected.length, 'the reference must not be empty').toBeGreaterThan(0);
  expect(comparable(rows, q.groupBy ?? [], q.interval !== undefined)).toEqual(expected);
  for (const r of rows) {
    expect(r.costNanoUsd).toMatch(/^\d+$/);
    expect(r.costUsd).toBeCloseTo(Number(r.costNanoUsd) / 1e9, 9);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------

describe('group-by combinations', () => {
  it.each([
    [[]],
    [['user']],
    [['app']],
    [['model']],
    [['provider']],
    [['user', 'model']],
    [['app', 'model']],
    [['model', 'user']],
    [['user', 'app', 'model', 'provider']],
  ])('groupBy=%j matches the recount', async (groupBy) => {
    const rows = await expectMatchesReference({ groupBy });
    for (const r of rows) {
      for (const dim of ['user', 'app', 'model', 'provider']) {
        expect(dim in r).toBe(groupBy.includes(dim));
      }
    }
  });

  it('the unpriced model reports its tokens as unpriced and costs 0', async () => {
    const rows = await expectMatchesReference({ groupBy: ['model'] });
    const acme = rows.find((r) => r.model === 'acme-frontier-9000');
    expect(acme?.costNanoUsd).toBe('0');
    expect(acme?.unpricedTokens).toBe(acme?.totalTokens);
    for (const r of rows.filter((x) => x.model !== 'acme-frontier-9000')) {
      expect(r.unpricedTokens).toBe(0);
      expect(BigInt(r.costNanoUsd)).toBeGreaterThan(0n);
    }
  });
});

describe('intervals and ranges', () => {
  it.each<[Interval, string[]]>([
    ['hour', []],
    ['hour', ['user']],
    ['day', []],
    ['day', ['app', 'model']],
    ['month', []],
    ['month', ['provider']],
  ])('interval=%s groupBy=%j matches the recount', async (interval, groupBy) => {
    const rows = await expectMatchesReference({ interval, groupBy });
    for (const r of rows) {
      const b = Date.parse(r.bucket as string);
      expect(bucketStart(b, interval)).toBe(b);
    }
  });

  it('interval=minute over the last two hours matches the recount', async () => {
    const fromMs = bucketStart(NOW - 2 * HOUR_MS, 'minute');
    const toMs = bucketStart(NOW, 'minute') + 60_000;
    await expectMatchesReference({ interval: 'minute', fromMs, toMs, groupBy: ['user'] });
  });

  it('an hour-aligned range keeps exactly the buckets that start in [from, to)', async () => {
    const fromMs = bucketStart(NOW - 30 * HOUR_MS, 'hour');
    const toMs = bucketStart(NOW - 2 * HOUR_MS, 'hour');
    await expectMatchesReference({ fromMs, toMs, groupBy: ['user'] });
    await expectMatchesReference({ fromMs, toMs, interval: 'hour' });
  });

  it('the whole-window total equals the sum of the hourly series', async () => {
    const [total] = await expectMatchesReference({});
    const hourly = await api.usageRows(adminKey, { interval: 'hour', limit: '10000' });
    expect(hourly.reduce((s, r) => s + r.totalTokens, 0)).toBe(total?.totalTokens);
    expect(hourly.reduce((s, r) => s + BigInt(r.costNanoUsd), 0n)).toBe(
      BigInt(total?.costNanoUsd ?? -1),
    );
  });
});

describe('filters', () => {
  it('a repeatable user filter (user=a&user=b) and its userId alias', async () => {
    await expectMatchesReference({ groupBy: ['user'], filters: { user: ['alice', 'bob'] } });
    const viaAlias = await api.usageRows(adminKey, [
      ['groupBy', 'user'],
      ['userId', 'alice'],
      ['user', 'bob'],
    ]);
    expect(viaAlias.map((r) => r.user).sort()).toEqual(['alice', 'bob']);
  });

  it('filters on several dimensions combine with AND', async () => {
    await expectMatchesReference({
      groupBy: ['user'],
      filters: { app: ['chat'], model: ['gpt-4o-mini', 'claude-sonnet-4-5-20250929'] },
    });
    await expectMatchesReference({ groupBy: ['model'], filters: { provider: ['bedrock'] } });
  });

  it('a filter matching nothing returns no rows', async () => {
    expect(await api.usageRows(adminKey, { groupBy: 'user', user: 'nobody' })).toEqual([]);
  });

  it('tag.team=a sums only events tagged team=a', async () => {
    await expectMatchesReference({ tag: { key: 'team', value: 'a' } });
    await expectMatchesReference({ tag: { key: 'team', value: 'a' }, groupBy: ['user'] });
    await expectMatchesReference({
      tag: { key: 'env', value: 'prod' },
      groupBy: ['model'],
      interval: 'day',
    });
  });

  it('groupBy=tag:team groups tagged events by their team', async () => {
    const rows = await expectMatchesReference({ groupBy: ['tag:team'] });
    expect(rows.map((r) => r['tag:team']).sort()).toEqual(['a', 'b', 'c']);
    await expectMatchesReference({ groupBy: ['tag:team', 'model'], interval: 'day' });
    await expectMatchesReference({ groupBy: ['tag:team'], tag: { key: 'team', value: 'b' } });
  });
});

describe('ordering and top-N', () => {
  it.each<[Measure, 'asc' | 'desc', number]>([
    ['totalTokens', 'desc', 3],
    ['inputTokens', 'asc', 2],
    ['requests', 'desc', 4],
    ['cacheReadTokens', 'desc', 1],
    ['errors', 'asc', 5],
  ])('groupBy=user orderBy=%s order=%s limit=%i', async (orderBy, order, limit) => {
    const rows = await expectMatchesReference({ groupBy: ['user'], orderBy, order, limit });
    expect(rows).toHaveLength(limit);
  });

  it('orderBy=costUsd (and its alias cost) orders by exact cost', async () => {
    for (const orderBy of ['costUsd', 'cost']) {
      const rows = await api.usageRows(adminKey, { groupBy: 'user,model', orderBy, limit: '7' });
      expect(rows).toHaveLength(7);
      const costs = rows.map((r) => BigInt(r.costNanoUsd));
      for (let i = 1; i < costs.length; i++) {
        expect(costs[i - 1] as bigint).toBeGreaterThanOrEqual(costs[i] as bigint);
      }
    }
  });

  it('an interval defaults to bucket order; order=desc reverses it', async () => {
    await expectMatchesReference({ interval: 'day' });
    await expectMatchesReference({ interval: 'day', orderBy: 'bucket', order: 'desc' });
  });
});

// ---------------------------------------------------------------------------------------------

/** RFC 4180 parser: quoted fields, doubled quotes, CRLF records. */
function parseCsv(text: string): string[][] {
  const records: string[][] = [];
  let field = '';
  let record: string[] = [];
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else field += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      record.push(field);
      field = '';
    } else if (ch === '\r' && text[i + 1] === '\n') {
      record.push(field);
      records.push(record);
      record = [];
      field = '';
      i++;
    } else field += ch;
  }
  if (field !== '' || record.length > 0) {
    record.push(field);
    records.push(record);
  }
  return records;
}

describe('CSV export', () => {
  it('Accept: text/csv and format=csv give the same rows as JSON', async () => {
    const params = { groupBy: 'user,model', interval: 'day' };
    const json = await api.usageRows(adminKey, params);
    const viaAccept = await api.usage(adminKey, params, { headers: { accept: 'text/csv' } });
    const viaFormat = await api.usage(adminKey, { ...params, format: 'csv' });
    for (const res of [viaAccept, viaFormat]) {
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/csv/);
      expect(res.headers['content-disposition']).toMatch(/attachment/);
    }
    expect(viaFormat.text).toBe(viaAccept.text);
    const [header, ...records] = parseCsv(viaAccept.text);
    expect(header?.slice(0, 4)).toEqual(['user', 'model', 'bucket', 'inputTokens']);
    expect(header).toContain('costNanoUsd');
    expect(records).toHaveLength(json.length);
    const col = (name: string) => (header ?? []).indexOf(name);
    records.forEach((rec, i) => {
      const row = json[i] as UsageRowJson;
      const user = rec[col('user')] as string;
      // A formula-looking cell carries a leading quote; otherwise the value is verbatim.
      expect(/^[=+\-@]/.test(row.user as string) ? `'${row.user}` : row.user).toBe(user);
      expect(rec[col('model')]).toBe(row.model);
      expect(rec[col('bucket')]).toBe(row.bucket);
      expect(Number(rec[col('totalTokens')])).toBe(row.totalTokens);
      expect(rec[col('costNanoUsd')]).toBe(row.costNanoUsd);
    });
  });

  it('never lets a spreadsheet run a user id as a formula', async () => {
    const res = await api.usage(adminKey, { groupBy: 'user', format: 'csv' });
    const [, ...records] = parseCsv(res.text);
    const users = records.map((r) => r[0] as string);
    expect(users).toContain(`'=HYPERLINK("http://evil.example","click")`);
    expect(users).toContain(`'+SUM(A1:A9)`);
    expect(users).toContain(`'@cmd`);
    expect(users).toContain(`'-2+3`);
    for (const cell of users) expect(cell).not.toMatch(/^[=+\-@\t\r]/);
    // On the wire the cell is quoted, the embedded quotes doubled.
    expect(res.text).toContain(`"'=HYPERLINK(""http://evil.example"",""click"")"`);
  });

  it('CSV with a tag group names the tag column', async () => {
    const res = await api.usage(adminKey, { groupBy: 'tag:team', format: 'csv' });
    const [header, ...records] = parseCsv(res.text);
    expect(header?.[0]).toBe('tag:team');
    expect(records.map((r) => r[0]).sort()).toEqual(['a', 'b', 'c']);
  });
});

describe('GET /v1/usage/count', () => {
  const countOf = async (params: Record<string, string>) => {
    const search = new URLSearchParams(params);
    const res = await api.get(`/v1/usage/count?${search}`, adminKey);
    expect(res.status, res.text).toBe(200);
    return res.json<{ count: number; query: { groupBy: string[] } }>();
  };

  it('counts the groups /v1/usage has, whatever its limit', async () => {
    const users = new Set(events.map((e) => e.userId));
    const pairs = new Set(events.map((e) => `${e.appId}|${e.userId}`));
    const window = {
      from: new Date(NOW - 40 * 86_400_000).toISOString(),
      to: new Date(NOW + 3_600_000).toISOString(),
    };
    const byUser = await countOf({ ...window, groupBy: 'user', limit: '1' });
    expect(byUser.count).toBe(users.size);
    expect(byUser.query.groupBy).toEqual(['user']);
    expect((await countOf({ ...window, groupBy: 'app,user' })).count).toBe(pairs.size);
    const chatUsers = new Set(events.filter((e) => e.appId === 'chat').map((e) => e.userId));
    expect((await countOf({ ...window, groupBy: 'user', app: 'chat' })).count).toBe(chatUsers.size);
    expect((await countOf({ ...window, groupBy: 'user', user: 'nobody' })).count).toBe(0);
  });

  it('needs a read key and refuses a bad parameter by name', async () => {
    expect((await api.get('/v1/usage/count?groupBy=user')).status).toBe(401);
    const res = await api.get('/v1/usage/count?groupBy=password', adminKey);
    expect(res.status).toBe(400);
    expect(
      res.json<{ error: { details: Array<{ field: string }> } }>().error.details[0]?.field,
    ).toBe('groupBy');
  });
});

describe('refusals name the parameter', () => {
  interface ApiError {
    error: { code: string; details: Array<{ field: string; reason: string }> };
  }

  it.each<[string, [string, string][], string, RegExp]>([
    ['an unknown parameter', [['foo', '1']], 'foo', /not a known query parameter/],
    ['a project parameter', [['projectId', 'b']], 'projectId', /not a known/],
    ['groupBy=password', [['groupBy', 'password']], 'groupBy', /"password"/],
    ['groupBy with SQL', [['groupBy', 'user;DROP TABLE series']], 'groupBy', /is not one of/],
    ['orderBy=password', [['orderBy', 'password']], 'orderBy', /must be one of/],
    ['interval=week', [['interval', 'week']], 'interval', /minute, hour, day, month/],
    ['limit=0', [['limit', '0']], 'limit', /from 1 to/],
    ['limit=abc', [['limit', 'abc']], 'limit', /integer/],
    ['limit=10001', [['limit', '10001']], 'limit', /from 1 to 10000/],
    ['order=sideways', [['order', 'sideways']], 'order', /asc or desc/],
    [
      'from after to',
      [
        ['from', '2026-02-02'],
        ['to', '2026-02-01'],
      ],
      'from',
      /before/,
    ],
    ['from without a zone', [['from', '2026-02-02T10:00:00']], 'from', /zone/],
    ['orderBy=bucket without interval', [['orderBy', 'bucket']], 'orderBy', /interval/],
    ['two tag dimensions', [['groupBy', 'tag:team,tag:env']], 'groupBy', /only one tag dimension/],
    [
      'a tag group and a filter on another key',
      [
        ['groupBy', 'tag:team'],
        ['tag.env', 'prod'],
      ],
      'groupBy',
      /same key/,
    ],
    ['an invalid tag key', [['tag.te am', 'x']], 'tag.te am', /invalid tag key/],
    [
      'tags at minute resolution',
      [
        ['interval', 'minute'],
        ['tag.team', 'a'],
        ['from', new Date(NOW - HOUR_MS).toISOString()],
      ],
      'interval',
      /hour and day/,
    ],
  ])('%s → 400', async (_name, params, field, reason) => {
    const res = await api.usage(adminKey, params);
    expect(res.status, res.text).toBe(400);
    const body = res.json<ApiError>();
    expect(body.error.code).toBe('invalid_query');
    expect(body.error.details).toContainEqual({ field, reason: expect.stringMatching(reason) });
    // The server answers the next query.
    expect((await api.usage(adminKey, { groupBy: 'user' })).status).toBe(200);
  });
});
