import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RealServer, SERVER_CLI } from '../../../packages/sdk/src/testing/real-server.js';
import { createApp } from './app.mjs';
import { BedrockStandIn, usageFor } from './bedrock-stand-in.mjs';

const built = existsSync(SERVER_CLI);
if (!built)
  console.warn(
    `skipping examples/bedrock-langchain e2e: ${SERVER_CLI} is not built (npm run build)`,
  );

const MODEL = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';

describe.skipIf(!built)('examples/bedrock-langchain: the seed end to end', () => {
  const server = new RealServer();
  const bedrock = new BedrockStandIn();
  beforeAll(async () => {
    await Promise.all([server.start(), bedrock.start()]);
  }, 30_000);
  afterAll(async () => {
    await Promise.all([server.stop(), bedrock.stop()]);
  });

  it('ChatBedrockConverse + handler + per-user metadata → totals per user × model × hour', async () => {
    const app = createApp({
      bedrockEndpoint: bedrock.url,
      region: 'us-east-1',
      modelId: MODEL,
      tokenwatchEndpoint: server.url,
      tokenwatchApiKey: server.ingestKey,
      appId: 'seed-chat',
    });
    const calls: { user: string; prompt: string; stream: boolean }[] = [];
    for (let i = 0; i < 30; i++) {
      const user = ['alice', 'bob', 'carol'][i % 3] as string;
      const prompt = `question ${i} from ${user}${i % 4 === 0 ? ' [cached]' : ''}${i % 9 === 0 ? ' [cache-write]' : ''}`;
      calls.push({ user, prompt, stream: i % 5 === 0 });
    }
    const t0 = Date.now();
    await Promise.all(
      calls.map((c) => (c.stream ? app.askStreaming(c.user, c.prompt) : app.ask(c.user, c.prompt))),
    );
    await app.close();
    expect(app.stats()).toMatchObject({ sent: 30, dropped: 0 });

    const expected = new Map<
      string,
      { input: number; output: number; cacheRead: number; cacheWrite: number; requests: number }
    >();
    for (const c of calls) {
      const u = usageFor(c.prompt);
      const e = expected.get(c.user) ?? {
        input: 0,
        output: 0,
        cacheRead: 0,
        cacheWrite: 0,
        requests: 0,
      };
      e.input += u.inputTokens;
      e.output += u.outputTokens;
      e.cacheRead += u.cacheReadInputTokens;
      e.cacheWrite += u.cacheWriteInputTokens;
      e.requests++;
      expected.set(c.user, e);
    }
    const hour = new Date(Math.floor(t0 / 3_600_000) * 3_600_000);
    const rows = await server.usage({
      groupBy: 'user,model',
      interval: 'hour',
      app: 'seed-chat',
      from: new Date(hour.getTime() - 3_600_000).toISOString(),
      to: new Date(Date.now() + 3_600_000).toISOString(),
    });
    // Everything ran inside this test; if it straddled an hour boundary, add the buckets up.
    const got = new Map<
      string,
      { input: number; output: number; cacheRead: number; cacheWrite: number; requests: number }
    >();
    for (const r of rows) {
      expect(r.model).toBe(MODEL);
      expect(Date.parse(String(r.bucket)) % 3_600_000).toBe(0);
      const g = got.get(String(r.user)) ?? {
        input: 0,
        output: 0,
        cacheRead: 0,
        cacheWrite: 0,
        requests: 0,
      };
      g.input += r.inputTokens as number;
      g.output += r.outputTokens as number;
      g.cacheRead += r.cacheReadTokens as number;
      g.cacheWrite += r.cacheWriteTokens as number;
      g.requests += r.requests as number;
      got.set(String(r.user), g);
    }
    expect(got).toEqual(expected);
    expect(bedrock.calls).toBe(30);
  });

  it("the seed's hourly threshold alert (user × model over N tokens) fires once", async () => {
    const cli = (args: string[]) =>
      execFileSync(process.execPath, [SERVER_CLI, ...args, '--data-dir', server.dataDir], {
        encoding: 'utf8',
      })
        .trim()
        .split('\n')
        .pop() as string;
    const adminKey = cli(['keys', 'create', '--role', 'admin']);
    const prompts = Array.from({ length: 5 }, (_, i) => `dave asks ${i}`);
    const totals = prompts.map((p) => {
      const u = usageFor(p);
      return u.inputTokens + u.outputTokens + u.cacheReadInputTokens + u.cacheWriteInputTokens;
    });
    // Crossed by the 4th call, whatever order the SDK batches them in.
    const threshold = totals.slice(0, 3).reduce((a, b) => a + b, 0) + 1;
    const rule = {
      name: 'seed',
      scope: ['user', 'model'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
      levels: [{ value: threshold }],
      channels: [{ type: 'log' }],
    };
    cli(['rules', 'create', '--json', JSON.stringify(rule)]);
    const get = async (path: string) =>
      (await (
        await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${adminKey}` } })
      ).json()) as Record<string, unknown[]>;
    // The running server counts into a rule made by the CLI from its next batch on (it rereads
    // the rules when the database changed).
    expect((await get('/v1/rules')).rules).toHaveLength(1);
    const app = createApp({
      bedrockEndpoint: bedrock.url,
      region: 'us-east-1',
      modelId: MODEL,
      tokenwatchEndpoint: server.url,
      tokenwatchApiKey: server.ingestKey,
      appId: 'seed-chat',
    });
    for (const p of prompts) await app.ask('dave', p);
    await app.close();
    // Users of the earlier tests that are over the threshold in this hour fire as the rule is
    // created (their window counts in full); dave's fires once, on the call that crosses it.
    const daves = async () =>
      ((await get('/v1/alerts')).alerts ?? []).filter(
        (a) => (a as { scope: { user: string } }).scope.user === 'dave',
      );
    let alerts: unknown[] = [];
    for (let i = 0; i < 50 && alerts.length === 0; i++) {
      alerts = await daves();
      if (alerts.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      scope: { user: 'dave', model: MODEL },
      level: { index: 0, threshold },
    });
    expect((alerts[0] as { value: number }).value).toBeGreaterThanOrEqual(threshold);
    const daveAlert = (alerts[0] as { id: string }).id;
    const deliveries = (await get('/v1/deliveries')).deliveries as Array<{
      status: string;
      alertId: string;
    }>;
    expect(deliveries.filter((d) => d.alertId === daveAlert).map((d) => d.status)).toEqual([
      'delivered',
    ]);
  }, 60_000);
});
