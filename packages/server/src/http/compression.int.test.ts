import { request } from 'node:http';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../testing/http-client.js';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { makeEvent, TokenwatchApi } from '../testing/tokenwatch-api.js';

/** Issue 13: API answers compressed for clients that accept it, through the real `serve`. */
let server: ServerProcess;
let key: string;

beforeAll(async () => {
  server = await startServerProcess();
  key = server.adminKey as string;
  const api = new TokenwatchApi(server.url);
  const events = Array.from({ length: 60 }, (_, i) =>
    makeEvent({ userId: `user-${String(i).padStart(3, '0')}`, inputTokens: 10 + i }),
  );
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

const get = (path: string, acceptEncoding?: string) =>
  httpRequest(`${server.url}${path}`, {
    headers: {
      authorization: `Bearer ${key}`,
      ...(acceptEncoding === undefined ? {} : { 'accept-encoding': acceptEncoding }),
    },
  });

describe('compressed API responses', () => {
  const usagePath = '/v1/usage?groupBy=user&from=2000-01-01&to=2100-01-01';

  it('gzip and brotli decode to exactly the JSON sent uncompressed', async () => {
    const plain = await get(usagePath);
    expect(plain.status, plain.text).toBe(200);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.headers.vary).toBe('Accept-Encoding');
    const expected = plain.json();
    expect(expected.rows).toHaveLength(60);

    const gz = await get(usagePath, 'gzip, deflate');
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toBe('Accept-Encoding');
    expect(Number(gz.headers['content-length'])).toBe(gz.body.length);
    expect(gz.body.length).toBeLessThan(plain.body.length / 3);
    expect(JSON.parse(gunzipSync(gz.body).toString('utf8'))).toEqual(expected);

    const br = await get(usagePath, 'gzip, deflate, br');
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toBe('Accept-Encoding');
    expect(JSON.parse(brotliDecompressSync(br.body).toString('utf8'))).toEqual(expected);
  });

  it('honours q=0, leaves small bodies alone, and compresses CSV too', async () => {
    const refused = await get(usagePath, 'br;q=0, gzip;q=0');
    expect(refused.headers['content-encoding']).toBeUndefined();
    expect(refused.json().rows).toHaveLength(60);
    const gzipOnly = await get(usagePath, 'br;q=0, *');
    expect(gzipOnly.headers['content-encoding']).toBe('gzip');

    const small = await get('/healthz', 'gzip, br');
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(small.json()).toEqual({ status: 'ok' });

    const csv = await get(`${usagePath}&format=csv`, 'gzip');
    expect(csv.headers['content-encoding']).toBe('gzip');
    const text = gunzipSync(csv.body).toString('utf8');
    expect(text.trim().split('\r\n')).toHaveLength(61);
  });

  it('the live stream is never compressed (each event must reach the client at once)', async () => {
    const headers = await new Promise<Record<string, unknown>>((resolve, reject) => {
      const req = request(
        `${server.url}/v1/live`,
        { headers: { authorization: `Bearer ${key}`, 'accept-encoding': 'gzip, br' } },
        (res) => {
          res.once('data', (chunk: Buffer) => {
            // The first event arrives as plain text, not as a compressed frame.
            expect(chunk.toString('utf8')).toContain('event: ready');
            resolve(res.headers);
            req.destroy();
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(headers['content-type']).toMatch(/^text\/event-stream/);
    expect(headers['content-encoding']).toBeUndefined();
  });
});
