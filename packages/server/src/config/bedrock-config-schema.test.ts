import { describe, expect, it } from 'vitest';
import { loadConfig } from './load-config.js';

describe('config: the bedrock section', () => {
  it('defaults when absent', () => {
    const config = loadConfig({
      env: {},
      overrides: [{ path: ['dataDir'], value: '/nonexistent-tw' }],
    });
    expect(config.bedrock.invocationLogs.userMetadataKeys).toEqual(['userId', 'user_id', 'user']);
    expect(config.bedrock.invocationLogs.appFromIdentity).toBe('role-name');
    expect(config.bedrock.reconcile).toMatchObject({
      enabled: false,
      lookbackHours: 6,
      settleMinutes: 15,
    });
  });

  it('names the field and the reason of every problem', () => {
    const load = (bedrock: unknown) =>
      loadConfig({
        env: {},
        overrides: [
          { path: ['dataDir'], value: '/nonexistent-tw' },
          { path: ['bedrock'], value: bedrock },
        ],
      });
    expect(() => load({ reconcile: { enabled: true } })).toThrow(
      expect.objectContaining({
        details: expect.arrayContaining([
          expect.objectContaining({ field: 'bedrock.reconcile.region' }),
        ]),
      }),
    );
    expect(() =>
      load({ invocationLogs: { tagMetadataKeys: ['bad key'], userFromIdentity: 'nick' } }),
    ).toThrow(
      expect.objectContaining({
        details: expect.arrayContaining([
          expect.objectContaining({ field: 'bedrock.invocationLogs.tagMetadataKeys.0' }),
          expect.objectContaining({ field: 'bedrock.invocationLogs.userFromIdentity' }),
        ]),
      }),
    );
    const ok = load({
      reconcile: { enabled: true, region: 'eu-central-1' },
      invocationLogs: { principals: [{ arn: 'arn:aws:iam::1:role/x', appId: 'x' }] },
    });
    expect(ok.bedrock.reconcile.region).toBe('eu-central-1');
    expect(ok.bedrock.invocationLogs.principals).toEqual([
      { arn: 'arn:aws:iam::1:role/x', appId: 'x' },
    ]);
  });
});
