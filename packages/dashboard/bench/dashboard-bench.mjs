// Dashboard benchmark: load N events over D days (a long tail of users, many apps, 20 models)
// through the real ingest API of `tokenwatch serve`, then, for the last hour, 24 hours, 7 and 30
// days, open every view in Chromium and measure navigation → every chart drawn, and replay each
// /v1/usage query the page sent (p50 / p95 over R runs).
//
//   node packages/dashboard/bench/dashboard-bench.mjs [--events 1000000] [--days 30] [--users 10000]
//     [--apps 50] [--runs 15] [--data-dir D (reuse a loaded store)] [--json out.json]
//
// Needs the build (npm run build) and /usr/bin/chromium.
import { existsSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { parseArgs } from 'node:util';
import { chromium } from 'playwright-core';
import { makeDataDir, startServerProcess } from '../../server/dist/testing/server-process.js';

const { values } = parseArgs({
  options: {
    events: { type: 'string', default: '1000000' },
    days: { type: 'string', default: '30' },
    users: { type: 'string', default: '10000' },
    apps: { type: 'string', default: '50' },
    runs: { type: 'string', default: '15' },
    'data-dir': { type: 'string' },
    'admin-key': { type: 'string' },
    json: { type: 'string' },
  },
});
const EVENTS = Number(values.events);
const DAYS = Number(values.days);
const USERS = Number(values.users);
const APPS = Number(values.apps);
const RUNS = Number(values.runs);
const HOUR = 3_600_000;
const DAY = 86_400_000;
const MODELS = [
  'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
  'anthropic.claude-3-5-haiku-20241022-v1:0',
  'us.anthropic.claude-haiku-4-5-20251001-v1:0',
  'amazon.nova-lite-v1:0',
  'amazon.nova-micro-v1:0',
  'amazon.nova-pro-v1:0',
  'global.anthropic.claude-sonnet-4-6',
  'anthropic.claude-3-haiku-20240307-v1:0',
  'meta.llama3-3-70b-instruct-v1:0',
  'meta.llama3-1-8b-instruct-v1:0',
  'mistral.mistral-large-2407-v1:0',
  'mistral.mixtral-8x7b-instruct-v0:1',
  'cohere.command-r-plus-v1:0',
  'cohere.command-r-v1:0',
  'deepseek.v3-v1:0',
  'eu.amazon.nova-pro-v1:0',
  'apac.amazon.nova-lite-v1:0',
  'us.anthropic.claude-opus-4-5-20251101-v1:0',
  'openai.gpt-oss-120b-1:0',
  'arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/bench-profile',
];

function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const agent = new Agent({ keepAlive: true, maxSockets: 8 });
function post(url, key, body) {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          authorization: `Bearer ${key}`,
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}
function get(url, key) {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = request(url, { agent, headers: { authorization: `Bearer ${key}` } }, (res) => {
      let n = 0;
      res.on('data', (c) => {
        n += c.length;
      });
      res.on('end', () =>
        resolve({ status: res.statusCode, ms: performance.now() - t0, bytes: n }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

async function load(url, key, now) {
  const rand = rng(42);
  const start = now - DAYS * DAY + HOUR; // inside the 35 days of accepted lateness
  const span = now - 60_000 - start;
  const t0 = Date.now();
  let sent = 0;
  const batch = 1000;
  const concurrency = 4;
  const next = () => {
    if (sent >= EVENTS) return undefined;
    const n = Math.min(batch, EVENTS - sent);
    const events = [];
    for (let i = 0; i < n; i++) {
      const id = sent + i;
      // Long tails: user rank ~ Zipf-like via a power of a uniform number.
      const user = Math.floor(rand() ** 3 * USERS);
      const app = Math.floor(rand() ** 2 * APPS);
      const model = Math.floor(rand() ** 1.5 * MODELS.length);
      events.push({
        id: `bench-${id}`,
        timestamp: Math.floor(start + rand() * span),
        userId: `user-${String(user).padStart(5, '0')}`,
        appId: `app-${String(app).padStart(2, '0')}`,
        modelId: MODELS[model],
        provider: 'bedrock',
        inputTokens: 50 + Math.floor(rand() * 4000),
        outputTokens: 10 + Math.floor(rand() * 800),
        cacheReadTokens: rand() < 0.3 ? Math.floor(rand() * 3000) : 0,
      });
    }
    sent += n;
    return JSON.stringify({ events });
  };
  const worker = async () => {
    for (let body = next(); body; body = next()) {
      for (;;) {
        const status = await post(`${url}/v1/events`, key, body);
        if (status === 202) break;
        if (status !== 503) throw new Error(`ingest answered ${status}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      if (sent % 200_000 === 0)
        process.stderr.write(
          `  ${sent} events, ${Math.round(sent / ((Date.now() - t0) / 1000))} ev/s\n`,
        );
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return (Date.now() - t0) / 1000;
}

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};

/** A short name for a usage query: what it groups by and at which resolution. */
function label(u) {
  const q = new URL(u).searchParams;
  const dims = q.get('groupBy') ?? 'total';
  const filt = ['app', 'model', 'user']
    .filter((d) => q.getAll(d).length > 0)
    .map((d) => `${d}∈${q.getAll(d).length}`);
  return `${dims}${q.get('interval') ? `/${q.get('interval')}` : ''}${q.get('orderBy') ? ` top ${q.get('limit')} by ${q.get('orderBy')}` : ''}${filt.length ? ` [${filt.join(',')}]` : ''}`;
}

async function main() {
  if (!existsSync('/usr/bin/chromium')) throw new Error('/usr/bin/chromium is missing');
  const dataDir = values['data-dir'] ?? makeDataDir('dash-bench');
  const server = await startServerProcess({ dataDir, startTimeoutMs: 120_000 });
  const admin = server.adminKey ?? values['admin-key'];
  if (!admin) throw new Error('reusing a data dir needs --admin-key');
  const now = Date.now();
  let loadSeconds;
  if (server.ingestKey) {
    process.stderr.write(
      `loading ${EVENTS} events over ${DAYS} days into ${dataDir} (admin key ${admin})\n`,
    );
    loadSeconds = await load(server.url, server.ingestKey, now);
    process.stderr.write(`loaded in ${loadSeconds.toFixed(0)} s\n`);
  }
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  const results = { events: EVENTS, days: DAYS, users: USERS, apps: APPS, loadSeconds, ranges: [] };
  for (const range of ['1h', '24h', '7d', '30d']) {
    for (const view of ['/', '/breakdown', '/top']) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 1000 } });
      const page = await context.newPage();
      await page.goto(`${server.url}/#key=${admin}`);
      await page.waitForSelector('body[data-refreshes]', { timeout: 120_000 });
      const urls = [];
      page.on('request', (r) => {
        if (r.url().includes('/v1/usage')) urls.push(r.url());
      });
      const t0 = Date.now();
      await page.goto(`${server.url}${view}?range=${range}`);
      await page.waitForFunction(() => Number(document.body.dataset.refreshes ?? 0) > 0, null, {
        timeout: 120_000,
      });
      const renderMs = Date.now() - t0;
      await context.close();
      const queries = [];
      for (const u of urls) {
        const times = [];
        let bytes = 0;
        for (let i = 0; i < RUNS; i++) {
          const r = await get(u, admin);
          if (r.status !== 200) throw new Error(`${u}: ${r.status}`);
          times.push(r.ms);
          bytes = r.bytes;
        }
        queries.push({ query: label(u), p50: pct(times, 50), p95: pct(times, 95), bytes });
      }
      results.ranges.push({ range, view, renderMs, queries });
      const worst = queries.reduce((a, q) => Math.max(a, q.p95), 0);
      console.log(
        `${range.padEnd(4)} ${view.padEnd(11)} render ${String(renderMs).padStart(6)} ms   ${queries.length} queries, worst p95 ${worst.toFixed(0)} ms`,
      );
      for (const q of queries)
        console.log(
          `       ${q.query.padEnd(58)} p50 ${q.p50.toFixed(1).padStart(7)}  p95 ${q.p95.toFixed(1).padStart(7)} ms  ${(q.bytes / 1024).toFixed(0)} KiB`,
        );
    }
  }
  await browser.close();
  await server.kill('SIGTERM');
  if (values.json) writeFileSync(values.json, `${JSON.stringify(results, null, 2)}\n`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
