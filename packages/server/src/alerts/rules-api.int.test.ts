import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type AlertServer,
  errorFields,
  type RuleJson,
  runCliWithin,
  startAlertServer,
  usageEvent,
  writeConfigFile,
} from '../testing/alerts-harness.js';
import {
  createKey,
  killStartedServers,
  makeDataDir,
  removeDataDir,
} from '../testing/server-process.js';
import { startWebhookReceiver, type WebhookReceiver } from '../testing/webhook-receiver.js';

/**
 * Issue 3: the rules API end to end against a real `tokenwatch serve`.
 * - SSRF at save time: webhook and Slack URLs on loopback, private, link-local, unique-local,
 *   metadata and unspecified addresses (and their decimal, octal, hex and IPv4-mapped spellings)
 *   are refused with a 400 naming `channels[i].url` unless `alerts.allowPrivateNetworks`; with
 *   it, loopback is accepted but metadata and unspecified addresses are still refused.
 * - Validation errors name their fields; the exact JSON example is accepted; CRUD.
 * - Rules in the config file are created at start with id `cfg-<name>`, follow the file on a
 *   restart, and a bad one makes `serve` exit non-zero naming the field.
 */

const SEED_EXAMPLE =
  '{"name":"seed","scope":["user","model"],"metric":"totalTokens","window":{"type":"calendar","unit":"hour","timeZone":"UTC"},"levels":[{"value":10000}],"channels":[{"type":"webhook","url":"http://127.0.0.1:9999/hook"}]}';

const ruleWith = (channels: unknown[], extra: Record<string, unknown> = {}) => ({
  name: 'r',
  scope: ['user'],
  metric: 'totalTokens',
  window: { type: 'calendar', unit: 'hour' },
  levels: [{ value: 1_000 }],
  channels,
  ...extra,
});

/** Refused whatever the policy says... */
const ALWAYS_REFUSED = [
  'http://169.254.169.254/latest/meta-data/',
  'http://169.254.170.2/v2/credentials',
  'http://[fd00:ec2::254]/',
  'http://0.0.0.0:8080/',
  'http://[::]/',
];
/** ...and refused unless private networks are allowed. */
const PRIVATE = [
  'http://127.0.0.1/hook',
  'http://127.0.0.1:9999/hook',
  'http://localhost/hook',
  'http://[::1]/',
  'http://2130706433/',
  'http://0177.0.0.1/',
  'http://0x7f.0.0.1/',
  'http://127.1/',
  'http://[::ffff:127.0.0.1]/',
  'http://[::ffff:7f00:1]/',
  'http://10.0.0.1/',
  'http://172.16.0.1/',
  'http://192.168.1.1/',
  'http://[fc00::1]/',
  'http://[fd12:3456::1]/',
  'http://[fe80::1]/',
  'http://169.254.10.10/',
];

let closed: AlertServer;
let open: AlertServer;
let hook: WebhookReceiver;
const dataDirs: string[] = [];

beforeAll(async () => {
  hook = await startWebhookReceiver();
  [closed, open] = await Promise.all([
    startAlertServer({ label: 'rules-closed' }),
    startAlertServer({
      label: 'rules-open',
      config: { alerts: { allowPrivateNetworks: true } },
    }),
  ]);
  dataDirs.push(closed.dataDir, open.dataDir);
});

afterAll(async () => {
  await closed?.server.kill('SIGTERM');
  await open?.server.kill('SIGTERM');
  await killStartedServers();
  await hook?.close();
  for (const d of dataDirs) removeDataDir(d);
});

describe('SSRF at save time (alerts.allowPrivateNetworks false, the default)', () => {
  it.each([...PRIVATE, ...ALWAYS_REFUSED])(
    'refuses a webhook to %s with a 400 naming channels[0].url',
    async (url) => {
      const res = await closed.client.postRule(ruleWith([{ type: 'webhook', url }]));
      expect(res.status, res.text).toBe(400);
      expect(errorFields(res)).toContain('channels[0].url');
    },
  );

  it('refuses Slack URLs the same way, and names the channel that is wrong', async () => {
    const slack = await closed.client.postRule(
      ruleWith([{ type: 'slack', url: 'http://169.254.169.254/services/T/B/X' }]),
    );
    expect(slack.status).toBe(400);
    expect(errorFields(slack)).toEqual(['channels[0].url']);
    const second = await closed.client.postRule(
      ruleWith([{ type: 'log' }, { type: 'webhook', url: 'http://[::1]:8080/x' }]),
    );
    expect(second.status).toBe(400);
    expect(errorFields(second)).toEqual(['channels[1].url']);
  });

  it("refuses the issue's example (a loopback webhook) and stores nothing refused", async () => {
    const res = await closed.client.postRule(SEED_EXAMPLE);
    expect(res.status).toBe(400);
    expect(errorFields(res)).toEqual(['channels[0].url']);
    expect(res.json().error.message + JSON.stringify(res.json().error.details)).toMatch(
      /allowPrivateNetworks/,
    );
    expect(await closed.client.rules()).toEqual([]);
  });

  it('refuses a PUT that points an existing rule at an internal address', async () => {
    const rule = await closed.client.createRule(ruleWith([{ type: 'log' }]));
    const res = await closed.client.send(
      'PUT',
      `/v1/rules/${rule.id}`,
      ruleWith([{ type: 'webhook', url: 'http://192.168.0.10/hook' }]),
    );
    expect(res.status).toBe(400);
    expect(errorFields(res)).toEqual(['channels[0].url']);
    const stored = (await closed.client.send('GET', `/v1/rules/${rule.id}`)).json().rule;
    expect(stored.channels).toEqual([{ type: 'log' }]);
  });
});

describe('SSRF at save time with alerts.allowPrivateNetworks true', () => {
  it.each([
    'http://127.0.0.1:9999/hook',
    'http://localhost:9999/hook',
    'http://[::1]:9999/',
    'http://10.1.2.3/',
  ])('accepts %s', async (url) => {
    const res = await open.client.postRule(ruleWith([{ type: 'webhook', url }]));
    expect(res.status, res.text).toBe(201);
  });

  it.each(ALWAYS_REFUSED)('still refuses %s (metadata, unspecified)', async (url) => {
    const res = await open.client.postRule(ruleWith([{ type: 'webhook', url }]));
    expect(res.status, res.text).toBe(400);
    expect(errorFields(res)).toContain('channels[0].url');
  });
});

describe('validation errors name their fields', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    [
      'unknown time zone',
      { window: { type: 'calendar', unit: 'day', timeZone: 'Mars/Olympus_Mons' } },
      'window.timeZone',
    ],
    [
      'offset instead of a zone',
      { window: { type: 'calendar', unit: 'day', timeZone: '+02:00' } },
      'window.timeZone',
    ],
    ['unknown calendar unit', { window: { type: 'calendar', unit: 'fortnight' } }, 'window.unit'],
    ['rolling window of 0 minutes', { window: { type: 'rolling', minutes: 0 } }, 'window.minutes'],
    ['empty level', { levels: [{}] }, 'levels[0]'],
    ['level with value and percent', { levels: [{ value: 1, percent: 50 }] }, 'levels[0]'],
    ['negative level', { levels: [{ value: -5 }] }, 'levels[0].value'],
    ['fractional token level', { levels: [{ value: 10.5 }] }, 'levels[0].value'],
    ['second level bad', { levels: [{ value: 10 }, { percent: 'half' }] }, 'levels[1].percent'],
    ['percent without a budget', { levels: [{ percent: 50 }] }, 'budget'],
    ['no levels', { levels: [] }, 'levels'],
    ['unknown scope dimension', { scope: ['team'] }, 'scope[0]'],
    ['unknown metric', { metric: 'tokens' }, 'metric'],
    ['unknown channel type', { channels: [{ type: 'pager' }] }, 'channels[0].type'],
    [
      'bad email address',
      { channels: [{ type: 'email', to: ['not-an-address'] }] },
      'channels[0].to[0]',
    ],
    [
      'not a URL',
      { channels: [{ type: 'webhook', url: 'ftp://example.com/x' }] },
      'channels[0].url',
    ],
    ['unknown field', { threshold: 10_000 }, 'threshold'],
    ['enforce not boolean', { enforce: 'yes' }, 'enforce'],
    ['blank name', { name: '   ' }, 'name'],
  ];
  it.each(cases)('%s → 400 naming %s', async (_what, patch, field) => {
    const res = await open.client.postRule(ruleWith([{ type: 'log' }], patch));
    expect(res.status, res.text).toBe(400);
    expect(res.json().error.code).toBe('invalid_argument');
    expect(errorFields(res)).toContain(field);
  });

  it('lists every problem at once, and a missing field by name', async () => {
    const res = await open.client.postRule({
      scope: ['user'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'Nowhere/City' },
      levels: [{ value: 0 }],
    });
    expect(res.status).toBe(400);
    expect(errorFields(res)).toEqual(
      expect.arrayContaining(['name', 'window.timeZone', 'levels[0].value']),
    );
  });

  it('a body that is not JSON, or not an object, is a 400', async () => {
    expect((await open.client.postRule('{"name":')).status).toBe(400);
    expect((await open.client.postRule('[1,2]')).status).toBe(400);
  });
});

describe('the rules API', () => {
  it("accepts the issue's exact JSON example (loopback allowed) and stores it with defaults", async () => {
    const res = await open.client.postRule(SEED_EXAMPLE);
    expect(res.status, res.text).toBe(201);
    const rule = res.json<{ rule: RuleJson }>().rule;
    expect(rule).toMatchObject({
      name: 'seed',
      scope: ['user', 'model'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      levels: [{ value: 10_000 }],
      enabled: true,
      enforce: false,
    });
    expect(rule.channels[0]?.url).toBe('http://127.0.0.1:9999/hook');
    // A signing secret is generated (Standard Webhooks: whsec_ + base64).
    expect(rule.channels[0]?.secret).toMatch(/^whsec_[A-Za-z0-9+/]+={0,2}$/);
    expect(rule.id).toMatch(/\S/);
  });

  it('create, list, get, update (secret kept), disable, enable, delete', async () => {
    const created = await open.client.createRule(
      ruleWith([{ type: 'webhook', url: hook.url('/crud') }], { name: 'crud' }),
    );
    const secret = created.channels[0]?.secret;
    expect((await open.client.rules()).map((r) => r.id)).toContain(created.id);
    const got = await open.client.send('GET', `/v1/rules/${created.id}`);
    expect(got.status).toBe(200);
    expect(got.json().rule).toEqual(created);

    const put = await open.client.send(
      'PUT',
      `/v1/rules/${created.id}`,
      ruleWith([{ type: 'webhook', url: hook.url('/crud') }], {
        name: 'crud v2',
        levels: [{ value: 2_000 }, { value: 4_000 }],
      }),
    );
    expect(put.status, put.text).toBe(200);
    const updated = put.json<{ rule: RuleJson }>().rule;
    expect(updated.name).toBe('crud v2');
    expect(updated.levels).toEqual([{ value: 2_000 }, { value: 4_000 }]);
    expect(updated.channels[0]?.secret).toBe(secret);

    const disabled = await open.client.send('POST', `/v1/rules/${created.id}/disable`);
    expect(disabled.status).toBe(200);
    expect(disabled.json().rule.enabled).toBe(false);
    const enabled = await open.client.send('POST', `/v1/rules/${created.id}/enable`);
    expect(enabled.json().rule.enabled).toBe(true);

    const del = await open.client.send('DELETE', `/v1/rules/${created.id}`);
    expect(del.status).toBe(200);
    expect((await open.client.send('GET', `/v1/rules/${created.id}`)).status).toBe(404);
    expect((await open.client.send('DELETE', `/v1/rules/${created.id}`)).status).toBe(404);
    expect((await open.client.send('PUT', `/v1/rules/${created.id}`, ruleWith([]))).status).toBe(
      404,
    );
    expect((await open.client.send('POST', `/v1/rules/${created.id}/disable`)).status).toBe(404);
    expect((await open.client.rules()).map((r) => r.id)).not.toContain(created.id);
  });

  it('only admin keys manage rules; read keys see status and alerts', async () => {
    const read = await createKey(open.dataDir, { role: 'read' });
    const rule = await open.client.createRule(ruleWith([{ type: 'log' }], { name: 'auth' }));
    expect((await open.client.postRule(ruleWith([]), open.client.ingestKey)).status).toBe(403);
    expect((await open.client.postRule(ruleWith([]), read.key)).status).toBe(403);
    expect((await open.client.send('POST', '/v1/rules', ruleWith([]), null)).status).toBe(401);
    expect((await open.client.send('GET', '/v1/rules', undefined, read.key)).status).toBe(403);
    expect(
      (await open.client.send('DELETE', `/v1/rules/${rule.id}`, undefined, read.key)).status,
    ).toBe(403);
    expect(
      (await open.client.send('GET', `/v1/rules/${rule.id}/status`, undefined, read.key)).status,
    ).toBe(200);
    expect((await open.client.send('GET', '/v1/alerts', undefined, read.key)).status).toBe(200);
    expect((await open.client.send('GET', '/v1/deliveries', undefined, read.key)).status).toBe(403);
  });
});

describe('rules in the config file', () => {
  it('are created on start with id cfg-<name>, fire, and follow the file on a restart', async () => {
    const dataDir = makeDataDir('cfg-rules');
    dataDirs.push(dataDir);
    const seedRule = {
      name: 'Seed Rule',
      scope: ['user', 'model'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      levels: [{ value: 1_000 }],
      channels: [{ type: 'webhook', url: hook.url('/cfg') }],
    };
    const budgetRule = {
      id: 'monthly',
      name: 'monthly budget',
      scope: ['app'],
      metric: 'costUsd',
      window: { type: 'calendar', unit: 'month', timeZone: 'Europe/Berlin' },
      budget: 200,
      levels: [{ percent: 50 }, { percent: 80 }, { percent: 100 }],
      channels: [{ type: 'log' }],
    };
    const first = await startAlertServer({
      dataDir,
      config: { alerts: { allowPrivateNetworks: true }, rules: [seedRule, budgetRule] },
    });
    const rules = await first.client.rules();
    expect(rules.map((r) => r.id).sort()).toEqual(['cfg-monthly', 'cfg-seed-rule']);
    const seed = rules.find((r) => r.id === 'cfg-seed-rule');
    expect(seed).toMatchObject({ name: 'Seed Rule', levels: [{ value: 1_000 }], enabled: true });
    const secret = seed?.channels[0]?.secret;
    expect(secret).toMatch(/^whsec_/);

    await first.client.ingest([usageEvent({ userId: 'cfg-user', inputTokens: 1_500 })]);
    const alerts = await first.client.alerts({ ruleId: 'cfg-seed-rule' });
    expect(alerts).toHaveLength(1);
    await hook.waitFor(
      () => [...hook.accepted.values()].some((h) => h.json?.alertId === alerts[0]?.id),
      15_000,
      'the config rule webhook',
    );
    await first.server.kill('SIGTERM');

    // The file changes: the seed rule's level moves, the budget rule goes away.
    writeConfigFile(dataDir, {
      alerts: { allowPrivateNetworks: true },
      rules: [{ ...seedRule, levels: [{ value: 5_000 }] }],
    });
    const second = await startAlertServer({
      dataDir,
      keys: { adminKey: first.client.adminKey, ingestKey: first.client.ingestKey },
    });
    const after = await second.client.rules();
    expect(after.map((r) => r.id)).toEqual(['cfg-seed-rule']);
    expect(after[0]?.levels).toEqual([{ value: 5_000 }]);
    // The generated signing secret survives (the URL did not change).
    expect(after[0]?.channels[0]?.secret).toBe(secret);
    // Alerts already raised are kept.
    expect(await second.client.alerts({ ruleId: 'cfg-seed-rule' })).toHaveLength(1);
    await second.server.kill('SIGTERM');
  });

  it('a config error (bad time zone) makes serve exit non-zero, listing the field', async () => {
    const dataDir = makeDataDir('cfg-bad');
    dataDirs.push(dataDir);
    writeConfigFile(dataDir, {
      rules: [
        {
          name: 'ok',
          scope: ['user'],
          metric: 'totalTokens',
          window: { type: 'calendar', unit: 'hour' },
          levels: [{ value: 10 }],
        },
        {
          name: 'bad zone',
          scope: ['user'],
          metric: 'totalTokens',
          window: { type: 'calendar', unit: 'day', timeZone: 'Europe/Atlantis' },
          levels: [{ percent: 50 }],
        },
      ],
    });
    const result = await runCliWithin(['serve', '--port', '0', '--data-dir', dataDir], 20_000);
    expect(result.timedOut).toBe(false);
    expect(result.code).not.toBe(0);
    const out = result.stdout + result.stderr;
    expect(out).toContain('rules[1].window.timeZone');
    expect(out).toContain('rules[1].budget');
    expect(out).not.toContain('rules[0]');
  });

  it('a config error in alerts.smtp makes serve exit non-zero, listing the field', async () => {
    const dataDir = makeDataDir('cfg-bad-smtp');
    dataDirs.push(dataDir);
    writeConfigFile(dataDir, {
      alerts: { smtp: { host: '127.0.0.1', port: 70_000, from: 'x' } },
    });
    const smtp = await runCliWithin(['serve', '--port', '0', '--data-dir', dataDir], 20_000);
    expect(smtp.timedOut).toBe(false);
    expect(smtp.code).not.toBe(0);
    expect(smtp.stdout + smtp.stderr).toContain('alerts.smtp.port');
  });

  it('a config rule whose webhook is refused (SSRF) makes serve exit non-zero, naming the field', async () => {
    const dataDir = makeDataDir('cfg-bad-ssrf');
    dataDirs.push(dataDir);
    writeConfigFile(dataDir, {
      rules: [ruleWith([{ type: 'webhook', url: 'http://169.254.169.254/' }], { name: 'meta' })],
    });
    const ssrf = await runCliWithin(['serve', '--port', '0', '--data-dir', dataDir], 15_000);
    // The error is printed...
    expect(ssrf.stdout + ssrf.stderr).toContain('rules[0].channels[0].url');
    // ...and the process must end on its own, with a non-zero code.
    expect(ssrf.timedOut, 'serve printed the error but kept running').toBe(false);
    expect(ssrf.code).not.toBe(0);
  });
});
