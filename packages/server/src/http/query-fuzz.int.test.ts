import { Agent, request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { seededRandom } from '../testing/tokenwatch-api.js';
import { type AppDeps, buildRoutes, querySpecOf } from './app.js';

/**
 * Issue 11 item 3: every query parameter of every GET endpoint is validated. A seeded fuzz sends
 * 10,000+ hostile query strings (floats, negatives, huge numbers, empty values, repeated keys,
 * unicode, broken percent-encoding, very long values, unknown names) to a real server with an
 * admin key; no answer may be a 5xx. The GET endpoints come from the route table, so a new one
 * is fuzzed without touching this file.
 */

const CASES = 10_500;
const CONCURRENCY = 8;
const SEED = Number(process.env.TOKENWATCH_FUZZ_SEED ?? 113);

/** Settings of AppDeps that are optional: left unset, as `serve` leaves them. */
const UNSET = new Set<string | symbol>(['then', 'dashboardDir', 'serveLive', 'serveMetrics']);

/** A deps object good enough to build the route table and read its paths; never serves. */
function routeListingDeps(): AppDeps {
  const inert: object = new Proxy(() => inert, {
    get: (_t, key) => (key === Symbol.toPrimitive ? () => 0 : UNSET.has(key) ? undefined : inert),
    apply: () => inert,
  });
  return inert as AppDeps;
}

interface Endpoint {
  path: string;
  params: string[];
}

function getEndpoints(): Endpoint[] {
  return buildRoutes(routeListingDeps())
    .filter((r) => r.method === 'GET')
    .map((r) => {
      const spec = querySpecOf(r);
      // The dashboard's catch-all path is a pattern; fuzz it at the root.
      const path = r.path.includes('(') ? '/' : r.path.replace(/:[a-zA-Z]+/g, 'fuzz-id');
      const params = Object.keys(spec?.params ?? {});
      if (spec?.dynamic?.test('tag.team')) params.push('tag.team', 'tag:team', 'tag.', 'tag:');
      return { path, params };
    });
}

const HOSTILE_VALUES = [
  '1.5',
  '0.5',
  '-1',
  '0',
  '-0',
  '1',
  '100',
  '1000',
  '1001',
  '10000',
  '10001',
  '1e3',
  '0x10',
  ' 1',
  '1 ',
  '+1',
  'NaN',
  'Infinity',
  '-Infinity',
  '9007199254740993',
  '9999999999999999',
  '99999999999999999999999',
  '-9999999999999999',
  '',
  'true',
  'false',
  'TRUE',
  'null',
  'undefined',
  '[]',
  '{}',
  'minute',
  'hour',
  'day',
  'month',
  'none',
  'csv',
  'json',
  'asc',
  'desc',
  'cost',
  'bucket',
  'totalTokens',
  'pending',
  'dead',
  'user',
  'user,app,model,provider',
  'tag:team',
  'tag:team,tag:env',
  ',,,',
  'tag:',
  '2024-02-30',
  '2024-01-01',
  '2024-01-01T00:00:00Z',
  '2024-01-01T00:00:00',
  '0000-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '275760-09-13T00:00:00Z',
  '+275760-09-13T00:00:00Z',
  '8640000000000001',
  '253402300800000',
  'ü',
  '💥',
  '\u0000',
  '\u202e',
  "' OR 1=1 --",
  '"; DROP TABLE events; --',
  '%',
  '%zz',
  '%E0%A4%A',
  '%ED%A0%80',
  '%00',
  '%FF%FE',
  '__proto__',
];
const EXTRA_NAMES = [
  'unknown',
  'LIMIT',
  'limit ',
  '__proto__',
  'constructor',
  'hasOwnProperty',
  'toString',
  '',
  'ü',
  '%zz',
  'a'.repeat(300),
];
/** Raw (already-encoded) fragments: percent-encoding errors must reach the server as sent. */
const RAW_VALUES = new Set(['%', '%zz', '%E0%A4%A', '%ED%A0%80', '%00', '%FF%FE']);

function pick<T>(rand: () => number, list: readonly T[]): T {
  return list[Math.floor(rand() * list.length)] as T;
}

function encodePart(rand: () => number, value: string): string {
  if (RAW_VALUES.has(value) && rand() < 0.7) return value;
  return encodeURIComponent(value);
}

function hostileValue(rand: () => number): string {
  const r = rand();
  if (r < 0.06)
    return pick(rand, ['a', '1', '9', '%20', 'ü']).repeat(1 + Math.floor(rand() * 4000));
  if (r < 0.12) return String(Math.floor((rand() - 0.5) * 10 ** Math.floor(rand() * 20)));
  if (r < 0.16) return String((rand() - 0.5) * 10 ** Math.floor(rand() * 10));
  return pick(rand, HOSTILE_VALUES);
}

function queryString(rand: () => number, endpoint: Endpoint): string {
  const parts: string[] = [];
  const count = Math.floor(rand() * 6);
  for (let i = 0; i < count; i++) {
    const name =
      endpoint.params.length > 0 && rand() < 0.8
        ? pick(rand, endpoint.params)
        : pick(rand, EXTRA_NAMES);
    const value = hostileValue(rand);
    const form = rand();
    if (form < 0.05) parts.push(encodePart(rand, name));
    else parts.push(`${encodePart(rand, name)}=${encodePart(rand, value)}`);
    // Repeated keys.
    if (rand() < 0.1)
      parts.push(`${encodePart(rand, name)}=${encodePart(rand, hostileValue(rand))}`);
  }
  if (rand() < 0.03) parts.push('&&=&');
  return parts.join('&');
}

interface Answer {
  status: number;
  body: string;
}

/** Status and (start of the) body; a server-sent-event stream is closed once it has answered. */
function get(base: string, target: string, key: string, agent: Agent): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${base}${target}`,
      { agent, headers: { authorization: `Bearer ${key}` } },
      (res) => {
        if (/event-stream/.test(String(res.headers['content-type']))) {
          res.destroy();
          resolve({ status: res.statusCode ?? 0, body: '(event stream)' });
          return;
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8').slice(0, 500),
          }),
        );
        res.on('error', reject);
      },
    );
    req.setTimeout(20_000, () => req.destroy(new Error(`no answer to ${target.slice(0, 200)}`)));
    req.on('error', reject);
    req.end();
  });
}

describe('query-string fuzz over every GET endpoint', () => {
  let server: ServerProcess;

  beforeAll(async () => {
    server = await startServerProcess({ env: { TOKENWATCH_LOG_LEVEL: 'error' } });
  });

  afterAll(async () => {
    await killStartedServers();
    if (server) removeDataDir(server.dataDir);
  });

  it('the route table lists the GET endpoints with their parameters', () => {
    const endpoints = getEndpoints();
    const paths = endpoints.map((e) => e.path);
    expect(paths).toEqual(
      expect.arrayContaining(['/healthz', '/v1/usage', '/v1/conflicts', '/v1/deliveries']),
    );
    expect(endpoints.find((e) => e.path === '/v1/conflicts')?.params).toEqual(['limit']);
  });

  it.each([
    ['/v1/conflicts?limit=1.5', 'limit'],
    ['/v1/deliveries?limit=0.5', 'limit'],
    ['/v1/conflicts?limit=-1', 'limit'],
    ['/v1/deliveries?limit=0', 'limit'],
    ['/v1/alerts?limit=1001', 'limit'],
    ['/v1/usage?limit=1.5', 'limit'],
    ['/v1/conflicts?limit=1&limit=2', 'limit'],
    ['/v1/usage?to=9999999999999999', 'to'],
    ['/v1/deliveries?status=lost', 'status'],
    ['/v1/keys?surprise=1', 'surprise'],
  ])('%s is a 400 naming %s', async (target, field) => {
    const agent = new Agent({ keepAlive: false });
    const answer = await get(server.url, target, server.adminKey as string, agent);
    expect(answer.status).toBe(400);
    const body = JSON.parse(answer.body) as {
      error: { code: string; details: Array<{ field: string; reason: string }> };
    };
    expect(body.error.code).toBe('invalid_query');
    expect(body.error.details.map((d) => d.field)).toContain(field);
  });

  it('valid limits still work', async () => {
    const agent = new Agent({ keepAlive: false });
    for (const target of ['/v1/conflicts?limit=1', '/v1/deliveries?limit=1000', '/v1/alerts']) {
      const answer = await get(server.url, target, server.adminKey as string, agent);
      expect(answer.status, `${target}: ${answer.body}`).toBe(200);
    }
  });

  it(`${CASES} hostile query strings give no 5xx`, { timeout: 120_000 }, async () => {
    const endpoints = getEndpoints();
    const rand = seededRandom(SEED);
    const targets = Array.from({ length: CASES }, () => {
      const endpoint = pick(rand, endpoints);
      const qs = queryString(rand, endpoint);
      return `${endpoint.path}${qs ? `?${qs}` : ''}`;
    });
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < targets.length) {
        const target = targets[next++] as string;
        const answer = await get(server.url, target, server.adminKey as string, agent);
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        if (answer.status >= 500)
          failures.push(`${answer.status} GET ${target.slice(0, 300)} → ${answer.body}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();
    if (failures.length > 0) console.error(`seed ${SEED}:\n${failures.slice(0, 50).join('\n')}`);
    expect(failures).toEqual([]);
    // The fuzz reached the handlers, not only the validation: some answers are successes.
    expect(statuses.get(200) ?? 0).toBeGreaterThan(0);
    expect(statuses.get(400) ?? 0).toBeGreaterThan(CASES / 4);
  });
});
