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

  it.todo(
    'the seed hourly threshold alert (userId × modelId over N tokens) arrives once: needs issue 3',
  );
});
