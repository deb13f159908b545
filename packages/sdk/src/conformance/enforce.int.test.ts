import { createServer, type Server, type Socket } from 'node:net';
import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { BedrockRuntimeClient, ConverseCommand } from '@aws-sdk/client-bedrock-runtime';
import { ChatOpenAI } from '@langchain/openai';
import { generateText, streamText, wrapLanguageModel } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenwatchMiddleware } from '../ai-sdk/index.js';
import { wrapAnthropic } from '../anthropic/index.js';
import { instrumentBedrock } from '../bedrock/index.js';
import { BudgetExceededError } from '../budget-exceeded-error.js';
import { createTokenwatch } from '../client.js';
import type { Tokenwatch } from '../client-options.js';
import { TokenwatchCallbackHandler } from '../langchain/index.js';
import { withUsageContext, wrapOpenAI } from '../openai/index.js';
import type { EnforceOptions } from '../shared/budget-guard.js';
import { ProviderReplayServer } from '../testing/provider-replay.js';
import { RealServer, SERVER_CLI, serverBuilt } from '../testing/real-server.js';
import { fixtures } from './harness.js';

if (!serverBuilt) {
  console.warn(`skipping the enforce tests: ${SERVER_CLI} is not built (run npm run build)`);
}

/**
 * Issue 16: `enforce` on every integration, with the real client library against a fake
 * provider and a real `tokenwatch serve` deciding. Once an enforced budget is crossed, the next
 * call throws BudgetExceededError and the provider receives nothing; the attempt shows in
 * /v1/usage as denied. A collector that hangs lets calls through (fail-open) or refuses them
 * (fail-closed), within the check's timeout.
 */
interface Driver {
  name: string;
  fixture: string;
  /** The integration set up on `tokenwatch` with `enforce`; calls the provider once for `userId`. */
  make(
    tokenwatch: Tokenwatch,
    enforce: boolean | EnforceOptions,
    replay: ProviderReplayServer,
  ): (userId: string) => Promise<unknown>;
}

const messages = [{ role: 'user' as const, content: 'Hello' }];
const fixture = (name: string) =>
  [...fixtures.openai, ...fixtures.anthropic, ...fixtures.bedrock].find((f) => f.name === name)!;

const drivers: Driver[] = [
  {
    name: 'wrapOpenAI',
    fixture: 'openai-chat',
    make(tokenwatch, enforce, replay) {
      const openai = wrapOpenAI(
        new OpenAI({ apiKey: 'sk-test', baseURL: `${replay.url}/v1`, maxRetries: 0 }),
        { tokenwatch, enforce },
      );
      return (userId) =>
        withUsageContext({ userId }, () =>
          openai.chat.completions.create({ model: 'gpt-4o-mini', messages }),
        );
    },
  },
  {
    name: 'wrapAnthropic',
    fixture: 'anthropic-messages',
    make(tokenwatch, enforce, replay) {
      const anthropic = wrapAnthropic(
        new Anthropic({ apiKey: 'sk-ant-test', baseURL: replay.url, maxRetries: 0 }),
        { tokenwatch, enforce },
      );
      return (userId) =>
        withUsageContext({ userId }, async () => {
          // withResponse() keeps working through the guard
          const { data, response } = await anthropic.messages
            .create({ model: 'claude-sonnet-4-5-20250929', max_tokens: 64, messages })
            .withResponse();
          expect(response.status).toBe(200);
          return data;
        });
    },
  },
  {
    name: 'instrumentBedrock',
    fixture: 'bedrock-converse',
    make(tokenwatch, enforce, replay) {
      const client = instrumentBedrock(
        new BedrockRuntimeClient({
          region: 'us-east-1',
          endpoint: replay.h2url,
          credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
          maxAttempts: 1,
        }),
        { tokenwatch, enforce },
      );
      return (userId) =>
        withUsageContext({ userId }, () =>
          client.send(
            new ConverseCommand({
              modelId: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0',
              messages: [{ role: 'user', content: [{ text: 'Hello' }] }],
            }),
          ),
        );
    },
  },
  {
    name: 'AI SDK middleware',
    fixture: 'openai-chat',
    make(tokenwatch, enforce, replay) {
      const model = wrapLanguageModel({
        model: createOpenAI({ apiKey: 'sk-test', baseURL: `${replay.url}/v1` }).chat('gpt-4o-mini'),
        middleware: tokenwatchMiddleware({ tokenwatch, enforce }),
      });
      return (userId) =>
        generateText({
          model,
          prompt: 'Hello',
          maxRetries: 0,
          providerOptions: { tokenwatch: { userId } },
        });
    },
  },
  {
    name: 'TokenwatchCallbackHandler',
    fixture: 'openai-chat',
    make(tokenwatch, enforce, replay) {
      const handler = new TokenwatchCallbackHandler({ tokenwatch, enforce });
      const model = new ChatOpenAI({
        model: 'gpt-4o-mini',
        apiKey: 'sk-test',
        maxRetries: 0,
        configuration: { baseURL: `${replay.url}/v1` },
      });
      return (userId) => model.invoke('Hello', { callbacks: [handler], metadata: { userId } });
    },
  },
];

/** Accepts connections and never answers: a collector that hangs. */
async function hangingCollector(): Promise<{ url: string; stop: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('data', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  return {
    url: `http://127.0.0.1:${port}`,
    stop: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

describe.skipIf(!serverBuilt)('enforce: the budget guard of every integration', () => {
  const srv = new RealServer();
  const replay = new ProviderReplayServer();
  let ruleId = '';
  let hang: Awaited<ReturnType<typeof hangingCollector>>;
  beforeAll(async () => {
    await Promise.all([srv.start(), replay.start()]);
    hang = await hangingCollector();
    ruleId = await srv.createRule({
      name: 'daily token budget',
      scope: ['user'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'day', timeZone: 'UTC' },
      levels: [{ value: 30 }],
      enforce: true,
      channels: [{ type: 'log' }],
    });
  }, 60_000);
  afterAll(async () => {
    await Promise.all([srv.stop(), replay.stop(), hang?.stop()]);
  });

  for (const d of drivers) {
    it(`${d.name}: past the budget, the next call throws BudgetExceededError and the provider sees nothing`, async () => {
      replay.serve(fixture(d.fixture));
      const tokenwatch = createTokenwatch({
        endpoint: srv.url,
        apiKey: srv.ingestKey,
        appId: 'guarded',
        flushOnExit: false,
        // cacheMs 0: the second call asks again right after the first one's usage landed.
        check: { cacheMs: 0, timeoutMs: 5000 },
      });
      const call = d.make(tokenwatch, true, replay);
      const userId = `user-${d.name}`;
      await call(userId); // under budget: goes through, its usage passes the budget
      expect(await tokenwatch.flush({ timeoutMs: 10_000 })).toBe(true);
      const seen = replay.requests.length;
      const error = await call(userId).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BudgetExceededError);
      const denied = error as BudgetExceededError;
      expect(denied).toMatchObject({
        name: 'BudgetExceededError',
        code: 'budget_exceeded',
        ruleIds: [ruleId],
        limit: 30,
        source: 'server',
        call: { userId, appId: 'guarded' },
      });
      expect(denied.used).toBeGreaterThan(30);
      expect(denied.retryAfterMs).toBeGreaterThan(0);
      expect(replay.requests.length).toBe(seen); // the provider received no request
      // Another user is still allowed.
      await call(`${userId}-other`);
      expect(replay.requests.length).toBe(seen + 1);
      expect(await tokenwatch.flush({ timeoutMs: 10_000 })).toBe(true);
      const [row] = await srv.usage({ groupBy: 'user', user: userId });
      expect(row).toMatchObject({ user: userId, requests: 1, deniedRequests: 1, errors: 0 });
      await tokenwatch.shutdown({ timeoutMs: 1000 });
    });

    it(`${d.name}: a collector that hangs lets the call through within the timeout (fail-open), or refuses it (fail-closed)`, async () => {
      replay.serve(fixture(d.fixture));
      const tokenwatch = createTokenwatch({
        endpoint: hang.url,
        apiKey: 'twk_x',
        flushOnExit: false,
        check: { timeoutMs: 50 },
      });
      const open = d.make(tokenwatch, { failMode: 'open' }, replay);
      const seen = replay.requests.length;
      const t0 = performance.now();
      await open('hang-user');
      const took = performance.now() - t0;
      expect(replay.requests.length).toBe(seen + 1);
      expect(took).toBeLessThan(50 + 2000); // bounded by the timeout; figures in bench:sdk
      const closed = d.make(tokenwatch, { failMode: 'closed' }, replay);
      const error = await closed('hang-user').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(BudgetExceededError);
      expect((error as BudgetExceededError).source).toBe('fail-closed');
      expect(replay.requests.length).toBe(seen + 1);
      await tokenwatch.shutdown({ timeoutMs: 100 });
    });
  }

  it('AI SDK streamText: a denied call is an error part of the stream (and onError), never sent', async () => {
    const tokenwatch = createTokenwatch({
      endpoint: srv.url,
      apiKey: srv.ingestKey,
      appId: 'guarded',
      flushOnExit: false,
      check: { cacheMs: 0, timeoutMs: 5000 },
    });
    const model = wrapLanguageModel({
      model: createOpenAI({ apiKey: 'sk-test', baseURL: `${replay.url}/v1` }).chat('gpt-4o-mini'),
      middleware: tokenwatchMiddleware({ tokenwatch, enforce: true }),
    });
    replay.serve(fixture('openai-chat-stream-cache'));
    const userId = 'stream-user';
    const run = async () => {
      const errors: unknown[] = [];
      const r = streamText({
        model,
        prompt: 'Hello',
        maxRetries: 0,
        providerOptions: { tokenwatch: { userId } },
        onError: ({ error }) => {
          errors.push(error);
        },
      });
      const parts: { type: string; error?: unknown }[] = [];
      for await (const part of r.fullStream) parts.push(part);
      return { errors, parts };
    };
    await run(); // 1,520 tokens: past the budget of 30
    expect(await tokenwatch.flush({ timeoutMs: 10_000 })).toBe(true);
    const seen = replay.requests.length;
    const { errors, parts } = await run();
    expect(replay.requests.length).toBe(seen);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(BudgetExceededError);
    expect(parts.find((p) => p.type === 'error')?.error).toBeInstanceOf(BudgetExceededError);
    await tokenwatch.shutdown({ timeoutMs: 1000 });
  });

  it("wrappers keep the SDK's own promise on a cached answer, and its helpers work through the guard", async () => {
    const tokenwatch = createTokenwatch({
      endpoint: srv.url,
      apiKey: srv.ingestKey,
      appId: 'helpers',
      flushOnExit: false,
      check: { timeoutMs: 5000, cacheMs: 60_000 },
    });
    const openai = wrapOpenAI(
      new OpenAI({ apiKey: 'sk-test', baseURL: `${replay.url}/v1`, maxRetries: 0 }),
      { tokenwatch, enforce: true, userId: 'helper-user' },
    );
    replay.serve(fixture('openai-chat'));
    const first = openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(first).not.toBeInstanceOf(Promise); // a stand-in while the collector answers
    expect((await first).usage?.prompt_tokens).toBe(120);
    const second = openai.chat.completions.create({ model: 'gpt-4o-mini', messages });
    expect(second).toBeInstanceOf(Promise); // the SDK's APIPromise itself: the answer was cached
    expect((await second.withResponse()).response.status).toBe(200);

    replay.serve(fixture('openai-chat-stream-cache'));
    let text = '';
    const stream = openai.chat.completions.stream({ model: 'gpt-4o-mini', messages });
    for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
    expect(text).toBe('Hello');

    const anthropic = wrapAnthropic(
      new Anthropic({ apiKey: 'sk-ant-test', baseURL: replay.url, maxRetries: 0 }),
      { tokenwatch, enforce: true, userId: 'helper-user-2' }, // not cached yet: the stand-in path
    );
    replay.serve(fixture('anthropic-messages-stream-cache-read'));
    const final = await anthropic.messages
      .stream({ model: 'claude-sonnet-4-5-20250929', max_tokens: 64, messages })
      .finalMessage();
    expect(final.usage.output_tokens).toBe(87);
    expect(await tokenwatch.flush({ timeoutMs: 10_000 })).toBe(true);
    const rows = await srv.usage({ groupBy: 'user', app: 'helpers', orderBy: 'requests' });
    expect(rows.map((r) => [r.user, r.requests, r.deniedRequests])).toEqual([
      ['helper-user', 3, 0],
      ['helper-user-2', 1, 0],
    ]);
    await tokenwatch.shutdown({ timeoutMs: 1000 });
  });
});
