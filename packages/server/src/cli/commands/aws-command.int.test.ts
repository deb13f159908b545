import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DynamoDbStore } from '../../adapters/store/dynamodb/dynamodb-store.js';
import { type LocalDynamo, startDynalite } from '../../adapters/store/dynamodb/testing/dynalite.js';
import { KeyAuthenticator } from '../../auth/api-keys.js';
import { runCli } from '../../testing/server-process.js';

let local: LocalDynamo;
let store: DynamoDbStore;
const table = `cli-keys-${process.pid}`;

beforeAll(async () => {
  local = await startDynalite();
  store = new DynamoDbStore({
    tableName: table,
    endpoint: local.endpoint,
    region: local.region,
    credentials: local.credentials,
  });
  await store.migrate();
});
afterAll(async () => {
  await store.close();
  await local.close();
});

/** The built CLI, with the credentials the SDK's default chain reads (dynalite checks none). */
const cli = (...args: string[]) =>
  runCli(['aws', 'create-keys', '--table', table, '--endpoint', local.endpoint, ...args], {
    AWS_ACCESS_KEY_ID: 'local',
    AWS_SECRET_ACCESS_KEY: 'local',
    AWS_REGION: 'us-east-1',
  });

function printed(stdout: string): { admin: string; ingest: string } {
  const admin = /^admin key: (\S+)$/m.exec(stdout)?.[1];
  const ingest = /^ingest key: (\S+)$/m.exec(stdout)?.[1];
  expect(admin, stdout).toMatch(/^twk_/);
  expect(ingest, stdout).toMatch(/^twk_/);
  return { admin: admin as string, ingest: ingest as string };
}

describe('tokenwatch aws create-keys (the AWS deployment’s first keys, never logged)', () => {
  it('creates the project and an admin and an ingest key in the table, printed once', async () => {
    const first = await cli();
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain('created project "default"');
    const { admin, ingest } = printed(first.stdout);
    // Only the hashes are stored; the printed keys authenticate against the table.
    const auth = new KeyAuthenticator(store, 0);
    expect(await auth.authenticate(`Bearer ${admin}`, 'admin')).toMatchObject({
      projectId: 'default',
    });
    expect(await auth.authenticate(`Bearer ${ingest}`, 'ingest')).toMatchObject({
      projectId: 'default',
    });
    await expect(auth.authenticate(`Bearer ${ingest}`, 'admin')).rejects.toThrow();
    const listed = await store.listKeys('default');
    expect(listed.map((k) => k.role).sort()).toEqual(['admin', 'ingest']);
    expect(JSON.stringify(listed)).not.toContain(admin);

    // A second run would mint another admin: refused, nothing created.
    const again = await cli();
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already has an active admin key .*--force/);
    expect(again.stdout).not.toContain('twk_');
    expect(await store.listKeys('default')).toHaveLength(2);

    const forced = await cli('--force');
    expect(forced.code, forced.stderr).toBe(0);
    printed(forced.stdout);
    expect(await store.listKeys('default')).toHaveLength(4);
  });

  it('names the missing or bad flag', async () => {
    const noTable = await runCli(['aws', 'create-keys']);
    expect(noTable.code).toBe(2);
    expect(noTable.stderr).toContain('--table must name the DynamoDB table');
    const badEndpoint = await cli('--endpoint', 'localhost:1');
    expect(badEndpoint.code).toBe(2);
    expect(badEndpoint.stderr).toContain('--endpoint must be an http(s):// URL');
    const unknown = await runCli(['aws', 'deploy']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown aws action "deploy"');
  });
});
