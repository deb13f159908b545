import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  killStartedServers,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  DAY_MS,
  makeEvent,
  TokenwatchApi,
  type UsageRowJson,
  type WireEvent,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, "Cost": costs computed here by hand, from the published per-1M-token prices written
 * out below (not from the product's catalog), match the API to the nano-dollar.
 *
 * Cost of one event = round_half_up(Σ tokens × price in nano-USD per 1M tokens / 1e6), rounded
 * once per event; a row's cost is the sum of its events' costs.
 */

/** Nano-USD per 1M tokens: [input, output, cache read, cache write]. */
type Price = readonly [bigint, bigint, bigint, bigint];
const usd = (text: string): bigint => {
  const [whole, frac = ''] = text.split('.');
  return BigInt(whole as string) * 1_000_000_000n + BigInt(frac.padEnd(9, '0'));
};
const price = (input: string, output: string, read: string, write: string): Price => [
  usd(input),
  usd(output),
  usd(read),
  usd(write),
];

// reference/bedrock-prices.csv (LiteLLM figures), USD per 1M tokens.
const SONNET_45_US = price('3.3', '16.5', '0.33', '4.125');
const SONNET_45_BASE = price('3', '15', '0.3', '3.75');
const HAIKU_3 = price('0.25', '1.25', '0.025', '0.3125');
// OpenAI has no cache-write price: cache writes are charged at the input price.
const GPT_4O_MINI = price('0.15', '0.6', '0.075', '0.15');

function costOf(p: Price, e: WireEvent): bigint {
  const sum =
    BigInt(e.inputTokens) * p[0] +
    BigInt(e.outputTokens) * p[1] +
    BigInt(e.cacheReadTokens ?? 0) * p[2] +
    BigInt(e.cacheWriteTokens ?? 0) * p[3];
  return (sum + 500_000n) / 1_000_000n; // half up
}

let server: ServerProcess;
let api: TokenwatchApi;
let adminKey: string;
let ingestKey: string;

beforeAll(async () => {
  server = await startServerProcess();
  api = new TokenwatchApi(server.url);
  adminKey = server.adminKey as string;
  ingestKey = server.ingestKey as string;
});

afterAll(async () => {
  if (server) {
    await server.kill('SIGTERM');
    removeDataDir(server.dataDir);
  }
  await killStartedServers();
});

async function send(events: WireEvent[]): Promise<void> {
  const res = await api.postEvents(ingestKey, { events });
  expect(res.status, res.text).toBe(202);
  expect(res.json()).toMatchObject({ accepted: events.length });
}

async function rowOf(user: string): Promise<UsageRowJson> {
  const rows = await api.usageRows(adminKey, { groupBy: 'user', user });
  expect(rows, user).toHaveLength(1);
  return rows[0] as UsageRowJson;
}

function expectCost(row: UsageRowJson, nano: bigint): void {
  expect(row.costNanoUsd).toBe(nano.toString());
  expect(row.costUsd).toBeCloseTo(Number(nano) / 1e9, 9);
}

describe('bundled prices, to the nano-dollar', () => {
  it('Bedrock Claude Sonnet 4.5, US cross-region profile (+10 %), all four token classes', async () => {
    const e = makeEvent({
      userId: 'sonnet-us',
      modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      provider: 'bedrock',
      inputTokens: 1234,
      outputTokens: 567,
      cacheReadTokens: 8901,
      cacheWriteTokens: 2345,
    });
    // 1234×3.3 + 567×16.5 + 8901×0.33 + 2345×4.125 = 26.038155 USD per 1M → 26 038 155 nano
    expect(costOf(SONNET_45_US, e)).toBe(26_038_155n);
    await send([e]);
    expectCost(await rowOf('sonnet-us'), 26_038_155n);
  });

  it('the base Sonnet 4.5 id costs the base price, and so does the eu. profile', async () => {
    const base = makeEvent({
      userId: 'sonnet-base',
      modelId: 'anthropic.claude-sonnet-4-5-20250929-v1:0',
      provider: 'bedrock',
      inputTokens: 1234,
      outputTokens: 567,
      cacheReadTokens: 8901,
      cacheWriteTokens: 2345,
    });
    const eu = { ...base, id: `${base.id}-eu`, userId: 'sonnet-eu' };
    eu.modelId = 'eu.anthropic.claude-sonnet-4-5-20250929-v1:0';
    expect(costOf(SONNET_45_BASE, base)).toBe(23_671_050n);
    await send([base, eu]);
    expectCost(await rowOf('sonnet-base'), 23_671_050n);
    expectCost(await rowOf('sonnet-eu'), 23_671_050n);
  });

  it('Claude 3 Haiku rounds half up once per event, not per class nor per row', async () => {
    // 1×0.25 + 1×1.25 + 1×0.025 + 1×0.3125 = 1.8375 USD per 1M → 1837.5 nano → 1838
    const one = makeEvent({
      userId: 'haiku-rounding',
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      provider: 'bedrock',
      inputTokens: 1,
      outputTokens: 1,
      cacheReadTokens: 1,
      cacheWriteTokens: 1,
    });
    const two = { ...one, id: `${one.id}-2` };
    // One cache-write token: 312.5 nano → 313; twice → 626 (not 625 as a per-row rounding gives).
    const cw = { ...one, id: `${one.id}-cw1`, userId: 'haiku-cw', inputTokens: 0, outputTokens: 0 };
    const cw2 = { ...cw, id: `${one.id}-cw2`, cacheReadTokens: 0 };
    const cw3 = { ...cw, id: `${one.id}-cw3`, cacheReadTokens: 0 };
    expect(costOf(HAIKU_3, one)).toBe(1838n);
    expect(costOf(HAIKU_3, cw2)).toBe(313n);
    await send([one, two, cw2, cw3]);
    expectCost(await rowOf('haiku-rounding'), 3676n);
    expectCost(await rowOf('haiku-cw'), 626n);
  });

  it('a foundation-model ARN is priced as its model and reported without the ARN', async () => {
    const { provider: _inferred, ...e } = makeEvent({
      userId: 'haiku-arn',
      modelId: 'arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-3-haiku-20240307-v1:0',
      inputTokens: 3,
      outputTokens: 40_001,
      cacheReadTokens: 77_777,
      cacheWriteTokens: 1,
    });
    // 750 + 50 001 250 + 1 944 425 + 312.5 = 51 946 737.5 → 51 946 738
    expect(costOf(HAIKU_3, e)).toBe(51_946_738n);
    await send([e]);
    const [row] = await api.usageRows(adminKey, {
      groupBy: 'user,model,provider',
      user: 'haiku-arn',
    });
    expect(row?.model).toBe('anthropic.claude-3-haiku-20240307-v1:0');
    expect(row?.provider).toBe('bedrock');
    expectCost(row as UsageRowJson, 51_946_738n);
  });

  it('an inference-profile ARN keeps its region for the price', async () => {
    const e = makeEvent({
      userId: 'sonnet-profile-arn',
      modelId:
        'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      provider: 'bedrock',
      inputTokens: 10,
      outputTokens: 10,
      cacheReadTokens: 10,
      cacheWriteTokens: 10,
    });
    await send([e]);
    expectCost(await rowOf('sonnet-profile-arn'), costOf(SONNET_45_US, e));
    expect(costOf(SONNET_45_US, e)).toBe(242_550n);
  });

  it('gpt-4o-mini: cache reads at their price, cache writes at the input price', async () => {
    const a = makeEvent({
      userId: 'mini',
      modelId: 'gpt-4o-mini',
      provider: 'openai',
      inputTokens: 1000,
      outputTokens: 333,
      cacheReadTokens: 2000,
      cacheWriteTokens: 7,
    });
    const b = { ...a, id: `${a.id}-b`, inputTokens: 3, outputTokens: 0, cacheReadTokens: 1 };
    b.cacheWriteTokens = 0;
    // a: 150 000 + 199 800 + 150 000 + 1 050 = 500 850; b: 450 + 75 = 525
    expect(costOf(GPT_4O_MINI, a)).toBe(500_850n);
    expect(costOf(GPT_4O_MINI, b)).toBe(525n);
    await send([a, b]);
    expectCost(await rowOf('mini'), 501_375n);
  });

  it('an unpriced model costs 0 and reports all its tokens as unpriced', async () => {
    const e = makeEvent({
      userId: 'unpriced',
      modelId: 'mystery-model-x',
      provider: 'acme',
      inputTokens: 100,
      outputTokens: 50,
      cacheReadTokens: 10,
      cacheWriteTokens: 5,
    });
    await send([e]);
    const row = await rowOf('unpriced');
    expectCost(row, 0n);
    expect(row.unpricedTokens).toBe(165);
    expect(row.unpricedRequests).toBe(1);
    expect(row.totalTokens).toBe(165);
  });

  it('the largest event (1e9 tokens of each class) is exact', async () => {
    const e = makeEvent({
      userId: 'whale',
      modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
      provider: 'bedrock',
      inputTokens: 1_000_000_000,
      outputTokens: 1_000_000_000,
      cacheReadTokens: 1_000_000_000,
      cacheWriteTokens: 1_000_000_000,
    });
    const twice = { ...e, id: `${e.id}-2`, inputTokens: 999_999_999 };
    await send([e, twice]);
    // 1e9 × 24.255 USD per 1M = 24 255 USD; the second 3.3e-6 USD less.
    expect(costOf(SONNET_45_US, e)).toBe(24_255_000_000_000n);
    expectCost(await rowOf('whale'), costOf(SONNET_45_US, e) + costOf(SONNET_45_US, twice));
  });

  it('a row sums its events exactly: total cost = Σ per-user costs', async () => {
    const rows = await api.usageRows(adminKey, { groupBy: 'user', limit: '10000' });
    const [total] = await api.usageRows(adminKey);
    const sum = rows.reduce((s, r) => s + BigInt(r.costNanoUsd), 0n);
    expect(total?.costNanoUsd).toBe(sum.toString());
  });
});

describe('per-project price overrides (PUT /v1/prices)', () => {
  const put = (body: unknown, key = adminKey) =>
    api.request('/v1/prices', {
      method: 'PUT',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const tokens = { inputTokens: 1000, outputTokens: 1000, cacheReadTokens: 1000 };

  it('changes the cost of later events, not of events already counted', async () => {
    const before = makeEvent({ userId: 'override-before', ...tokens, cacheWriteTokens: 1000 });
    await send([before]);
    // (0.15 + 0.6 + 0.075 + 0.15) USD per 1M × 1000 tokens = 975 000 nano
    expectCost(await rowOf('override-before'), 975_000n);

    const res = await put({
      provider: 'openai',
      modelId: 'gpt-4o-mini',
      input: '1.10',
      output: '4.40',
      cacheRead: '0.55',
      cacheWrite: '2.2',
    });
    expect(res.status, res.text).toBe(200);

    const after = makeEvent({ userId: 'override-after', ...tokens, cacheWriteTokens: 1000 });
    await send([after]);
    // (1.1 + 4.4 + 0.55 + 2.2) USD per 1M × 1000 tokens = 8 250 000 nano
    expectCost(await rowOf('override-after'), 8_250_000n);
    expectCost(await rowOf('override-before'), 975_000n);

    const listed = (await api.get('/v1/prices', adminKey)).json<{
      overrides: Array<{ modelId: string }>;
    }>();
    expect(listed.overrides.map((o) => o.modelId)).toEqual(['gpt-4o-mini']);
  });

  it('an override dated tomorrow does not apply to events of today', async () => {
    const tomorrow = new Date(Date.now() + DAY_MS).toISOString().slice(0, 10);
    const res = await put({
      provider: 'bedrock',
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      effectiveFrom: tomorrow,
      input: '100',
      output: '100',
    });
    expect(res.status, res.text).toBe(200);
    const e = makeEvent({
      userId: 'haiku-future-override',
      modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
      provider: 'bedrock',
      inputTokens: 1,
      outputTokens: 1,
      cacheReadTokens: 1,
      cacheWriteTokens: 1,
    });
    await send([e]);
    expectCost(await rowOf('haiku-future-override'), 1838n);
  });

  it('an override can price an unpriced model', async () => {
    expect(
      (await put({ provider: 'acme', modelId: 'mystery-model-x', input: '2', output: '8' })).status,
    ).toBe(200);
    const e = makeEvent({
      userId: 'unpriced-now-priced',
      modelId: 'mystery-model-x',
      provider: 'acme',
      inputTokens: 100,
      outputTokens: 50,
      cacheReadTokens: 10,
      cacheWriteTokens: 5,
    });
    await send([e]);
    const row = await rowOf('unpriced-now-priced');
    // Missing cache prices fall back to the input price: ((100 + 10 + 5) × 2 + 50 × 8) USD per 1M
    expect(costOf(price('2', '8', '2', '2'), e)).toBe(630_000n);
    expectCost(row, 630_000n);
    expect(row.unpricedTokens).toBe(0);
  });

  it('DELETE /v1/prices brings the bundled price back for later events', async () => {
    const del = await api.request('/v1/prices?provider=openai&modelId=gpt-4o-mini', {
      method: 'DELETE',
      headers: { authorization: `Bearer ${adminKey}` },
    });
    expect(del.status, del.text).toBe(200);
    await send([makeEvent({ userId: 'override-deleted', ...tokens, cacheWriteTokens: 1000 })]);
    expectCost(await rowOf('override-deleted'), 975_000n);
  });

  it('refuses an invalid override naming the field, and a non-admin key', async () => {
    const bad = await put({ provider: 'openai', modelId: 'gpt-4o', input: '-1', output: 'abc' });
    expect(bad.status).toBe(400);
    const fields = bad
      .json<{ error: { details: Array<{ field: string }> } }>()
      .error.details.map((d) => d.field);
    expect(fields).toEqual(expect.arrayContaining(['input', 'output']));
    const unknownField = await put({
      provider: 'openai',
      modelId: 'gpt-4o',
      input: '1',
      output: '1',
      currency: 'EUR',
    });
    expect(unknownField.status).toBe(400);
    expect(
      (await put({ provider: 'openai', modelId: 'gpt-4o', input: '0', output: '0' }, ingestKey))
        .status,
    ).toBe(403);
  });
});
