import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  runCli,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import { makeEvent, TokenwatchApi } from '../testing/tokenwatch-api.js';

/**
 * Issue 10, "calls without usage", and issue 16's denied calls, through the real server: each
 * status is counted where the README says, and `/v1/usage` (JSON and CSV) shows it.
 */
let server: ServerProcess;
let api: TokenwatchApi;

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
});

afterAll(async () => {
  if (server) {
    await server.kill('SIGTERM');
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

describe('call statuses in /v1/usage', () => {
  it('counts ok, error, no_usage and denied calls apart, in JSON and CSV', async () => {
    const none = { inputTokens: 0, outputTokens: 0 };
    const res = await api.postEvents(server.ingestKey as string, {
      events: [
        makeEvent({ userId: 'ana', inputTokens: 100, outputTokens: 20 }),
        makeEvent({ userId: 'ana', status: 'error', ...none }),
        makeEvent({ userId: 'ana', status: 'no_usage', ...none }),
        makeEvent({ userId: 'ana', status: 'no_usage', inputTokens: 40, outputTokens: 0 }),
        makeEvent({ userId: 'ana', status: 'denied', ...none }),
        makeEvent({ userId: 'bo', status: 'denied', ...none }),
      ],
    });
    expect(res.status, res.text).toBe(202);
    const rows = await api.usageRows(server.adminKey as string, { groupBy: 'user' });
    const pick = (r: Record<string, unknown>) => [
      r.user,
      r.requests,
      r.errors,
      r.noUsageRequests,
      r.deniedRequests,
      r.totalTokens,
    ];
    expect(rows.map(pick)).toEqual([
      ['ana', 4, 1, 2, 1, 160],
      ['bo', 0, 0, 0, 1, 0],
    ]);
    const csv = await api.usage(server.adminKey as string, { groupBy: 'user', format: 'csv' });
    const [header, ana, bo] = csv.text
      .trim()
      .split('\r\n')
      .map((l) => l.split(','));
    const col = (name: string) => (header ?? []).indexOf(name);
    expect(col('noUsageRequests')).toBeGreaterThan(0);
    expect([ana?.[col('noUsageRequests')], ana?.[col('deniedRequests')]]).toEqual(['2', '1']);
    expect([bo?.[col('requests')], bo?.[col('deniedRequests')]]).toEqual(['0', '1']);
    // The terminal report says so too.
    const report = await runCli(['usage', '--data-dir', server.dataDir, '--period', '24h']);
    expect(report.code, report.stderr).toBe(0);
    expect(report.stdout).toContain('2 calls returned no usage');
    expect(report.stdout).toContain('2 calls were denied by a budget');
  });
});
