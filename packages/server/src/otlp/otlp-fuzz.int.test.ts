import { Agent } from 'node:http';
import { gzipSync } from 'node:zlib';
import { fingerprint } from '@tokenwatch/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { seededRandom, TokenwatchApi } from '../testing/tokenwatch-api.js';
import { loadOtlpProtoTypes } from './otlp-protobuf.js';
import {
  encodeRequestObject,
  type FixtureName,
  type RequestObject,
  readFixture,
  refreshRequest,
  toOtlpJson,
  toRequestObject,
} from './testing/otlp-payloads.js';

/**
 * Issue 14, bad input: 10,000 fuzzed bodies (mutated protobuf and OTLP/JSON of the recorded
 * payloads, garbage, wrong content types, broken gzip) against `tokenwatch serve`. No answer may
 * be a 5xx; a request that is refused must store nothing (each request names its own user, and a
 * user of a refused request must never show up in the usage); the server then still counts a
 * good request exactly.
 */

const BODIES = 10_000;
const CONCURRENCY = 8;
const types = loadOtlpProtoTypes();
const FIXTURES: FixtureName[] = ['ai-sdk-6', 'openllmetry', 'openinference'];

let server: ServerProcess;
let api: TokenwatchApi;

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
});

afterAll(async () => {
  if (server) {
    const exit = await server.kill('SIGTERM');
    expect(exit.code).toBe(0);
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

/** A user id a mutation cannot turn into another valid one: index plus its own checksum. */
function userOf(i: number): string {
  return `fuzz-${i}-${fingerprint(`fuzz ${i}`)}`;
}
const USER = /^fuzz-(\d+)-([0-9a-z]+)$/;

function withUser(request: RequestObject, user: string): RequestObject {
  for (const rs of request.resourceSpans ?? []) {
    rs.resource ??= {};
    rs.resource.attributes = [
      { key: 'user.id', value: { stringValue: user } },
      ...(rs.resource.attributes ?? []),
    ];
  }
  return request;
}

type Random = () => number;
const pick = <T>(rand: Random, items: readonly T[]): T =>
  items[Math.floor(rand() * items.length)] as T;

function mutateBytes(rand: Random, body: Buffer): Buffer {
  const out = Buffer.from(body);
  switch (Math.floor(rand() * 5)) {
    case 0: // flip a few bytes
      for (let k = 0; k < 1 + Math.floor(rand() * 5); k++) {
        out[Math.floor(rand() * out.length)] = Math.floor(rand() * 256);
      }
      return out;
    case 1: // truncate
      return out.subarray(0, Math.floor(rand() * out.length));
    case 2: {
      // insert random bytes
      const at = Math.floor(rand() * out.length);
      const junk = Buffer.from(
        Array.from({ length: 1 + Math.floor(rand() * 16) }, () => Math.floor(rand() * 256)),
      );
      return Buffer.concat([out.subarray(0, at), junk, out.subarray(at)]);
    }
    case 3: // pure garbage
      return Buffer.from(
        Array.from({ length: Math.floor(rand() * 512) }, () => Math.floor(rand() * 256)),
      );
    default: // two messages back to back (a valid protobuf merge) or a duplicated tail
      return Buffer.concat([out, out.subarray(Math.floor(rand() * out.length))]);
  }
}

const ODD_VALUES: unknown[] = [
  null,
  -1,
  1.5,
  '-5',
  '99999999999999999999999',
  'NaN',
  [],
  {},
  true,
  'x'.repeat(300),
  { intValue: '-7' },
  { intValue: 1e30 },
  { stringValue: 42 },
  { doubleValue: 'Infinity' },
  [[[[[[[[[[]]]]]]]]]],
];

/** Replaces one random node of the JSON tree (a value, an array, an object) by an odd value. */
function mutateJson(rand: Random, value: unknown): unknown {
  const nodes: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number }> = [];
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        nodes.push({ parent: node, key: i });
        walk(child);
      });
    } else if (node && typeof node === 'object') {
      for (const [k, child] of Object.entries(node)) {
        nodes.push({ parent: node as Record<string, unknown>, key: k });
        walk(child);
      }
    }
  };
  walk(value);
  const count = 1 + Math.floor(rand() * 3);
  for (let k = 0; k < count && nodes.length > 0; k++) {
    const { parent, key } = pick(rand, nodes);
    (parent as Record<string | number, unknown>)[key] = pick(rand, ODD_VALUES);
  }
  return value;
}

interface FuzzCase {
  user: string;
  body: Buffer | string;
  headers: Record<string, string>;
}

function makeCase(rand: Random, i: number): FuzzCase {
  const user = userOf(i);
  const request = withUser(
    refreshRequest(toRequestObject(types, readFixture(pick(rand, FIXTURES))), Date.now()),
    user,
  );
  const headers: Record<string, string> = {};
  let body: Buffer | string;
  const kind = rand();
  if (kind < 0.4) {
    body = mutateBytes(rand, encodeRequestObject(types, request));
    headers['content-type'] = 'application/x-protobuf';
  } else if (kind < 0.7) {
    body = JSON.stringify(mutateJson(rand, JSON.parse(toOtlpJson(request))));
    headers['content-type'] = 'application/json';
  } else if (kind < 0.85) {
    const text = toOtlpJson(request);
    const at = Math.floor(rand() * text.length);
    body =
      rand() < 0.5
        ? text.slice(0, at)
        : `${text.slice(0, at)}${pick(rand, ['"', '{', ']', '\\', '\u0000', '9'])}${text.slice(at)}`;
    headers['content-type'] = 'application/json';
  } else {
    // Right body, wrong declared type; or a valid body under a broken gzip.
    const proto = encodeRequestObject(types, request);
    if (rand() < 0.5) {
      body = proto;
      headers['content-type'] = pick(rand, [
        'application/json',
        'text/plain',
        'application/x-protobuf; charset=utf-8',
      ]);
    } else {
      const zipped = gzipSync(proto);
      body = mutateBytes(rand, zipped);
      headers['content-type'] = 'application/x-protobuf';
      headers['content-encoding'] = 'gzip';
    }
  }
  return { user, body, headers };
}

describe('fuzz of POST /v1/traces', () => {
  it(`${BODIES} fuzzed bodies: no 5xx, nothing stored from a refused request`, async () => {
    const rand = seededRandom(14);
    const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
    const statusByUser = new Map<string, number>();
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= BODIES) return;
        const c = makeCase(rand, i);
        const res = await api.request('/v1/traces', {
          method: 'POST',
          headers: { authorization: `Bearer ${server.ingestKey}`, ...c.headers },
          body: c.body,
          agent,
        });
        statusByUser.set(c.user, res.status);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        if (res.status >= 500) throw new Error(`request ${i}: ${res.status} ${res.text}`);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    agent.destroy();

    const counts = Object.fromEntries([...statuses].sort(([a], [b]) => a - b));
    console.info(`OTLP fuzz: ${BODIES} bodies, answers by status ${JSON.stringify(counts)}`);
    expect(
      Object.keys(counts).every((s) => Number(s) < 500),
      JSON.stringify(counts),
    ).toBe(true);
    // The fuzz must exercise both sides: accepted requests and refused ones.
    expect(counts[200] ?? 0).toBeGreaterThan(500);
    expect(counts[400] ?? 0).toBeGreaterThan(500);

    const stored = await api.totalsByUser(server.adminKey as string);
    let attributed = 0;
    for (const user of stored.keys()) {
      const m = USER.exec(user);
      if (!m || fingerprint(`fuzz ${m[1]}`) !== m[2]) continue; // a mutated id: not attributable
      attributed++;
      expect(statusByUser.get(user), `${user} was stored`).toBe(200);
    }
    expect(attributed).toBeGreaterThan(100);
  }, 240_000);

  it('after the fuzz, a good request is still counted exactly', async () => {
    const request = withUser(
      refreshRequest(toRequestObject(types, readFixture('openinference')), Date.now()),
      'after-fuzz',
    );
    const res = await api.request('/v1/traces', {
      method: 'POST',
      headers: {
        authorization: `Bearer ${server.ingestKey}`,
        'content-type': 'application/x-protobuf',
      },
      body: encodeRequestObject(types, request),
    });
    expect(res.status).toBe(200);
    const totals = (await api.totalsByUser(server.adminKey as string)).get('after-fuzz');
    expect(totals).toEqual({
      inputTokens: 476,
      cacheReadTokens: 1024,
      cacheWriteTokens: 0,
      outputTokens: 40,
      totalTokens: 1540,
      requests: 1,
    });
  });
});
