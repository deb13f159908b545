import Anthropic from '@anthropic-ai/sdk';
import { ChatAnthropic } from '@langchain/anthropic';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withUsageContext, wrapAnthropic } from '../anthropic/index.js';
import { TokenwatchCallbackHandler } from '../langchain/index.js';
import type { Fixture } from '../testing/provider-replay.js';
import { Conformance, expectConforms, fixtures } from './harness.js';

const messages = [{ role: 'user' as const, content: 'Hello' }];

describe('conformance: @anthropic-ai/sdk wrapper', () => {
  const c = new Conformance();
  let anthropic: Anthropic;
  beforeAll(async () => {
    await c.start();
    anthropic = wrapAnthropic(
      new Anthropic({ apiKey: 'sk-ant-test', baseURL: c.replay.url, maxRetries: 0 }),
      {
        tokenwatch: c.tokenwatch,
        userId: 'default-user',
      },
    );
  });
  afterAll(() => c.stop());

  async function call(f: Fixture): Promise<unknown> {
    if (f.api === 'messages')
      return anthropic.messages.create({ model: f.modelId, max_tokens: 256, messages });
    const seen: unknown[] = [];
    for await (const ev of await anthropic.messages.create({
      model: f.modelId,
      max_tokens: 256,
      messages,
      stream: true,
    })) {
      seen.push(ev);
    }
    return seen;
  }

  for (const f of fixtures.anthropic) {
    it(`${f.name} (${f.api})`, async () => {
      const events = await c.run(f, () => withUsageContext({ userId: 'u-ant' }, () => call(f)));
      expectConforms(events, f, { userId: 'u-ant' });
    });
  }

  it('the messages.stream() helper goes through the wrapper; finalMessage agrees', async () => {
    const f = fixtures.anthropic.find((x) => x.api === 'messages-stream')!;
    let finalUsage: unknown;
    const events = await c.run(f, async () => {
      const stream = anthropic.messages.stream({ model: f.modelId, max_tokens: 256, messages });
      finalUsage = (await stream.finalMessage()).usage;
    });
    expectConforms(events, f, { userId: 'default-user' });
    expect(finalUsage).toMatchObject({
      input_tokens: 12,
      output_tokens: 87,
      cache_read_input_tokens: 3000,
    });
  });
});

describe('conformance: LangChain ChatAnthropic + TokenwatchCallbackHandler', () => {
  const c = new Conformance();
  let handler: TokenwatchCallbackHandler;
  beforeAll(async () => {
    await c.start();
    handler = new TokenwatchCallbackHandler({ tokenwatch: c.tokenwatch });
  });
  afterAll(() => c.stop());

  for (const f of fixtures.anthropic) {
    it(`${f.name} (${f.api})`, async () => {
      const model = new ChatAnthropic({
        model: f.modelId,
        apiKey: 'sk-ant-test',
        maxRetries: 0,
        anthropicApiUrl: c.replay.url,
      });
      const config = { callbacks: [handler], metadata: { user_id: 'u-lc-ant', app_id: 'lc-ant' } };
      const events = await c.run(f, async () => {
        if (f.api === 'messages') return model.invoke('Hello', config);
        for await (const _ of await model.stream('Hello', config)) {
          // drain
        }
        return undefined;
      });
      expectConforms(events, f, { userId: 'u-lc-ant', appId: 'lc-ant' });
    });
  }
});
