import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  makeDataDir,
  removeDataDir,
  runCli,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { TokenwatchApi } from '../testing/tokenwatch-api.js';
import {
  type LogRecord,
  loadFixtureRecords,
  loggedTokens,
  redate,
  s3LogDir,
  writeJsonGz,
  writeTruncatedJsonGz,
} from './testing/log-fixtures.js';

/**
 * Issue 15: `tokenwatch import bedrock-logs <dir>` on a directory of `.json.gz` files laid out as
 * S3 delivers them, run twice: the first run imports every good record and reports every bad
 * one with its reason; the second counts nothing again (all duplicates). Through a running server
 * and straight into the store alike; totals checked against the logged token counts.
 */

const HOUR = 3_600_000;
const now = Date.now();
const fixtures = loadFixtureRecords();
const fixture = (name: string): LogRecord => {
  const r = fixtures.get(name);
  if (!r) throw new Error(`no fixture ${name}`);
  return r;
};

interface Layout {
  root: string;
  good: LogRecord[];
  skipped: Record<string, number>;
}

/** A log directory: good records over three hours, and one of each kind of bad input. */
async function writeLogDirectory(root: string): Promise<Layout> {
  const good: LogRecord[] = [];
  const t = (h: number, s: number) => now - h * HOUR - s * 1000;
  const hourA = [
    redate(fixture('converse-haiku-metadata'), t(3, 10)),
    redate(fixture('converse-stream-nova'), t(3, 20)),
    redate(fixture('invoke-model-claude-cache'), t(3, 30)),
  ];
  const hourB = [
    redate(fixture('invoke-model-stream-titan'), t(2, 10)),
    redate(fixture('invoke-model-llama-header-metadata'), t(2, 20)),
    redate(fixture('application-inference-profile'), t(2, 30)),
    redate(fixture('error-throttled'), t(2, 40)),
  ];
  const truncated = [
    redate(fixture('converse-haiku-metadata'), t(1, 10)),
    redate(fixture('converse-stream-nova'), t(1, 20)),
    redate(fixture('invoke-model-claude-cache'), t(1, 30)), // lost with the gzip's tail
  ];
  good.push(...hourA, ...hourB, truncated[0] as LogRecord, truncated[1] as LogRecord);

  const base = fixture('converse-stream-nova');
  const noCounts = redate(base, t(2, 50));
  noCounts.input = { inputContentType: 'application/json' };
  noCounts.output = { outputContentType: 'application/json' };
  const absurd = redate(base, t(2, 51));
  absurd.output = { outputTokenCount: 1e12 };
  const futureSchema = { ...redate(base, t(2, 52)), schemaVersion: '2.0' };
  const tooOld = redate(base, now - 40 * 24 * HOUR);
  const cloudTrail = {
    eventVersion: '1.09',
    eventSource: 'bedrock.amazonaws.com',
    eventName: 'Converse',
  };

  writeJsonGz(join(s3LogDir(root, t(3, 0)), '20260101T000000Z_a1b2c3d4e5f6a7b8.json.gz'), hourA);
  writeJsonGz(join(s3LogDir(root, t(2, 0)), '20260101T010000Z_b1b2c3d4e5f6a7b8.json.gz'), [
    ...hourB,
    noCounts,
    absurd,
    futureSchema,
    tooOld,
    cloudTrail,
    'this line is not JSON',
  ]);
  await writeTruncatedJsonGz(
    join(s3LogDir(root, t(1, 0)), '20260101T020000Z_c1b2c3d4e5f6a7b8.json.gz'),
    truncated,
    2,
  );
  return {
    root,
    good,
    skipped: {
      missing_token_counts: 1,
      absurd_token_count: 1,
      unknown_schema_version: 1,
      invalid_event: 1, // older than the 35 days the contract accepts
      not_invocation_log: 1,
      unreadable: 2, // the line that is not JSON, the truncated gzip
    },
  };
}

function sum(records: readonly LogRecord[]) {
  const out = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
  for (const r of records) {
    const t = loggedTokens(r);
    out.inputTokens += t.inputTokens;
    out.outputTokens += t.outputTokens;
    out.cacheReadTokens += t.cacheReadTokens;
    out.cacheWriteTokens += t.cacheWriteTokens;
  }
  return out;
}

interface Summary {
  files: number;
  records: number;
  imported: number;
  duplicates: number;
  conflicts: number;
  skipped: number;
  skippedByReason: Record<string, number>;
  examples: Array<{ reason: string; detail: string; where?: string }>;
}

async function importDir(args: string[]): Promise<Summary> {
  const result = await runCli(['import', 'bedrock-logs', ...args, '--json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Summary;
}

const totalSkipped = (layout: Layout) => Object.values(layout.skipped).reduce((a, b) => a + b, 0);

describe('tokenwatch import bedrock-logs through a running server', () => {
  let server: ServerProcess;
  let api: TokenwatchApi;
  let layout: Layout;

  beforeAll(async () => {
    server = await startServerProcess();
    api = new TokenwatchApi(server.url);
    layout = await writeLogDirectory(makeDataDir('bedrock-logs'));
  });
  afterAll(async () => {
    await server?.kill('SIGTERM');
    await killStartedServers();
    if (server) removeDataDir(server.dataDir);
    if (layout) removeDataDir(layout.root);
  });

  it('a call the SDK already sent (same request id and tokens) is a duplicate, not a second count', async () => {
    const sdkSeen = layout.good[0] as LogRecord;
    const res = await api.postEvents(server.ingestKey, {
      id: `bedrock:${sdkSeen.requestId}`,
      timestamp: Date.parse(sdkSeen.timestamp) - 800,
      userId: 'alice',
      appId: 'support-bot',
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      provider: 'bedrock',
      ...loggedTokens(sdkSeen),
      latencyMs: 3700,
    });
    expect(res.status, res.text).toBe(202);
  });

  it('first run: every good record imported, every bad one skipped with its reason', async () => {
    const summary = await importDir([layout.root, '--data-dir', server.dataDir]);
    expect(summary.files).toBe(3);
    expect(summary.imported).toBe(layout.good.length - 1);
    expect(summary.duplicates).toBe(1); // the call the SDK sent above
    expect(summary.conflicts).toBe(0);
    expect(summary.skippedByReason).toEqual(layout.skipped);
    expect(summary.skipped).toBe(totalSkipped(layout));
    expect(summary.records).toBe(layout.good.length + totalSkipped(layout));
    const truncation = summary.examples.find((e) => e.detail.includes('gzip'));
    expect(truncation?.where).toMatch(/c1b2c3d4e5f6a7b8\.json\.gz$/);
  });

  it('second run: nothing counted again, the same skips reported', async () => {
    const summary = await importDir([layout.root, '--data-dir', server.dataDir]);
    expect(summary.imported).toBe(0);
    expect(summary.duplicates).toBe(layout.good.length);
    expect(summary.conflicts).toBe(0);
    expect(summary.skippedByReason).toEqual(layout.skipped);
  });

  it('the stored totals are exactly the logged token counts of the good records', async () => {
    const rows = await api.usageRows(server.adminKey as string, { provider: 'bedrock' });
    expect(rows).toHaveLength(1);
    const row = rows[0] as Record<string, number>;
    expect({
      inputTokens: row.inputTokens,
      outputTokens: row.outputTokens,
      cacheReadTokens: row.cacheReadTokens,
      cacheWriteTokens: row.cacheWriteTokens,
      requests: row.requests,
      errors: row.errors,
    }).toEqual({ ...sum(layout.good), requests: layout.good.length, errors: 1 });
    const byUser = await api.usageRows(server.adminKey as string, { groupBy: 'user,app' });
    const alice = byUser.find((r) => r.user === 'alice');
    expect(alice?.app).toBe('support-bot');
  });
});

describe('tokenwatch import bedrock-logs straight into the store (no server)', () => {
  let dataDir: string;
  let layout: Layout;
  beforeAll(async () => {
    dataDir = makeDataDir('bedrock-direct');
    mkdirSync(dataDir, { recursive: true });
    layout = await writeLogDirectory(makeDataDir('bedrock-logs-direct'));
  });
  afterAll(() => {
    if (dataDir) removeDataDir(dataDir);
    if (layout) removeDataDir(layout.root);
  });

  it('twice: the second run is all duplicates', async () => {
    // A server killed without its shutdown left its server.json: the import must not try it.
    const dead = spawnSync(process.execPath, ['-e', '']).pid;
    writeFileSync(
      join(dataDir, 'server.json'),
      JSON.stringify({ url: 'http://127.0.0.1:9', pid: dead }),
    );
    const first = await importDir([layout.root, '--data-dir', dataDir]);
    expect(first.imported).toBe(layout.good.length);
    expect(first.skippedByReason).toEqual(layout.skipped);
    const second = await importDir([layout.root, '--data-dir', dataDir]);
    expect(second.imported).toBe(0);
    expect(second.duplicates).toBe(layout.good.length);
    expect(second.skippedByReason).toEqual(layout.skipped);
    const report = await runCli(['usage', '--data-dir', dataDir, '--period', '48h', '--json']);
    expect(report.code, report.stderr).toBe(0);
    const totals = (JSON.parse(report.stdout) as { totals: Record<string, number> }).totals;
    expect({
      inputTokens: totals.inputTokens,
      outputTokens: totals.outputTokens,
      cacheReadTokens: totals.cacheReadTokens,
      cacheWriteTokens: totals.cacheWriteTokens,
      requests: totals.requests,
    }).toEqual({ ...sum(layout.good), requests: layout.good.length });
  });

  it('a data dir that does not exist yet is created (an import before the first serve)', async () => {
    const parent = makeDataDir('bedrock-fresh');
    try {
      const summary = await importDir([layout.root, '--data-dir', join(parent, 'not-yet', 'data')]);
      expect(summary.imported).toBe(layout.good.length);
    } finally {
      removeDataDir(parent);
    }
  });

  it('the human summary names counts, reasons and where', async () => {
    const result = await runCli(['import', 'bedrock-logs', layout.root, '--data-dir', dataDir]);
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(
      new RegExp(
        `3 files, ${layout.good.length + totalSkipped(layout)} records: 0 imported, ${layout.good.length} duplicates, 0 conflicts, ${totalSkipped(layout)} skipped`,
      ),
    );
    expect(result.stdout).toMatch(/absurd_token_count 1/);
    expect(result.stdout).toMatch(/\.json\.gz#\d+: missing_token_counts/);
  });
});

describe('POST /v1/import/bedrock-logs', () => {
  let server: ServerProcess;
  let api: TokenwatchApi;
  beforeAll(async () => {
    server = await startServerProcess();
    api = new TokenwatchApi(server.url);
  });
  afterAll(async () => {
    await server?.kill('SIGTERM');
    await killStartedServers();
    if (server) removeDataDir(server.dataDir);
  });

  const post = (
    body: string | Buffer,
    headers: Record<string, string> = {},
    key = server.ingestKey,
  ) =>
    api.request('/v1/import/bedrock-logs', {
      method: 'POST',
      headers: {
        'content-type': 'application/x-ndjson',
        ...(key ? { authorization: `Bearer ${key}` } : {}),
        ...headers,
      },
      body,
    });

  it('JSON lines in, a tally out; gzip bodies; a re-post is all duplicates', async () => {
    const a = redate(fixture('converse-haiku-metadata'), now - 60_000);
    const b = redate(fixture('invoke-model-claude-cache'), now - 50_000);
    const body = `${JSON.stringify(a)}\n{"not":"a log"}\n${JSON.stringify(b)}\n{"broken":`;
    const first = await post(gzipSync(body), { 'content-encoding': 'gzip' });
    expect(first.status, first.text).toBe(200);
    expect(first.json()).toMatchObject({
      records: 4,
      imported: 2,
      duplicates: 0,
      skipped: 2,
      skippedByReason: { not_invocation_log: 1, unreadable: 1 },
    });
    const again = await post(body);
    expect(again.json()).toMatchObject({ imported: 0, duplicates: 2, skipped: 2 });
  });

  it('refuses without a key, a body of another type, and an empty body', async () => {
    expect((await post('{}', {}, '')).status).toBe(401);
    expect((await post('{}', { 'content-type': 'application/xml' })).status).toBe(415);
    expect((await post('   ')).status).toBe(400);
  });
});
