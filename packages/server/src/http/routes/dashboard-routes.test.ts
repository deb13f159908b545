import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AppDeps } from '../app.js';
import { toErrorResponse } from '../error-mapping.js';
import { QueryValues } from '../query-params.js';
import { sendJson } from '../respond.js';
import {
  DASHBOARD_PATH,
  DEFAULT_DASHBOARD_DIR,
  dashboardRoutes,
  StaticFiles,
} from './dashboard-routes.js';

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** A raw request: the path is sent exactly as given (no client-side normalisation). */
function get(port: number, path: string, headers: Record<string, string> = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

const pattern = new RegExp(`^${DASHBOARD_PATH}$`);

/** The dashboard route behind the same path test and error mapping the app uses. */
async function serve(dir: string): Promise<{ server: Server; port: number }> {
  const [route] = dashboardRoutes({} as AppDeps, { dir });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!pattern.test(url.pathname)) {
      sendJson(res, 404, { api: true });
      return;
    }
    route!
      .handle({
        req,
        res,
        url,
        params: {},
        query: new QueryValues(url.searchParams),
        requestId: 't',
      })
      .catch((err: unknown) => {
        const r = toErrorResponse(err, 't');
        sendJson(res, r.status, r.body);
      });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, port: (server.address() as AddressInfo).port };
}

const INDEX =
  '<!doctype html><title>tokenwatch</title><script type="module" src="/assets/app-Ab12.js"></script>';
const SCRIPT = `console.log(${JSON.stringify('x'.repeat(5000))});`;

describe('dashboard routes', () => {
  let root: string;
  let dist: string;
  let port: number;
  let server: Server;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'tw-dash-'));
    dist = join(root, 'dist');
    mkdirSync(join(dist, 'assets'), { recursive: true });
    writeFileSync(join(dist, 'index.html'), INDEX);
    writeFileSync(join(dist, 'assets', 'app-Ab12.js'), SCRIPT);
    writeFileSync(join(dist, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
    writeFileSync(join(dist, '.env'), 'SECRET=dotfile');
    writeFileSync(join(root, 'secret.txt'), 'SECRET=outside');
    ({ server, port } = await serve(dist));
  });

  afterAll(async () => {
    await new Promise((r) => server.close(r));
    rmSync(root, { recursive: true, force: true });
  });

  it('serves index.html at / with a strict policy, revalidated by ETag', async () => {
    const res = await get(port, '/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect(res.headers['content-security-policy']).toContain("script-src 'self'");
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.body.toString()).toBe(INDEX);
    const again = await get(port, '/', { 'if-none-match': String(res.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
  });

  it('hashed assets: right type, cached for a year, gzip when asked', async () => {
    const plain = await get(port, '/assets/app-Ab12.js');
    expect(plain.status).toBe(200);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.body.toString()).toBe(SCRIPT);
    const gz = await get(port, '/assets/app-Ab12.js', { 'accept-encoding': 'gzip, br' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gz.headers.vary).toBe('Accept-Encoding');
    expect(gunzipSync(gz.body).toString()).toBe(SCRIPT);
    const icon = await get(port, '/favicon.svg');
    expect(icon.headers['content-type']).toBe('image/svg+xml');
    expect(icon.headers['cache-control']).toBe('public, max-age=3600');
  });

  it('any other dashboard path gets index.html; a missing file is a 404', async () => {
    for (const path of ['/users/alice', '/top?range=7d', '/breakdown/', '/users/a%20b']) {
      const res = await get(port, path);
      expect(res.status, path).toBe(200);
      expect(res.body.toString(), path).toBe(INDEX);
    }
    expect((await get(port, '/assets/missing-123.js')).status).toBe(404);
    expect((await get(port, '/robots.txt')).status).toBe(404);
  });

  it('never reads outside the dist directory, nor dot-files', async () => {
    const attempts = [
      '/../secret.txt',
      '/assets/../../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/..%5csecret.txt',
      '/%2e%2e%2fsecret.txt',
      '/.env',
      '/assets/%2e%2e/.env',
      '/%00index.html',
      '/%E0%A4%A.js',
    ];
    for (const path of attempts) {
      const res = await get(port, path);
      expect(res.body.toString(), path).not.toContain('SECRET=');
      expect([200, 400, 404], path).toContain(res.status);
    }
    const files = new StaticFiles(dist);
    expect(files.resolvePath('/assets/..%2f..%2fsecret.txt')).toBeUndefined();
    expect(files.resolvePath('/.env')).toBeUndefined();
    expect(files.resolvePath('/a\\..\\b')).toBeUndefined();
    expect(files.resolvePath('/assets/app-Ab12.js')).toBe(join(dist, 'assets', 'app-Ab12.js'));
  });

  it('leaves API paths to the API', () => {
    for (const p of [
      '/v1',
      '/v1/',
      '/v1/usage',
      '/v1/nope',
      '/healthz',
      '/readyz',
      '/metrics',
      '/metrics/x',
    ]) {
      expect(pattern.test(p), p).toBe(false);
    }
    for (const p of ['/', '/users/v1', '/v1x', '/metricsx', '/assets/a.js', '/alerts']) {
      expect(pattern.test(p), p).toBe(true);
    }
  });

  it('without a build, / explains how to build it', async () => {
    const missing = await serve(join(root, 'nope'));
    try {
      const res = await get(missing.port, '/');
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(res.body.toString()).toContain('npm run build');
      expect((await get(missing.port, '/users/x')).body.toString()).toContain('npm run build');
    } finally {
      await new Promise((r) => missing.server.close(r));
    }
  });

  it('finds the dashboard build beside the server package', () => {
    expect(DEFAULT_DASHBOARD_DIR.replace(/\\/g, '/')).toMatch(/\/packages\/dashboard\/dist\/?$/);
  });
});
