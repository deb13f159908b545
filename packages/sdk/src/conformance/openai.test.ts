import { ChatOpenAI } from '@langchain/openai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenwatchCallbackHandler } from '../langchain/index.js';
import { withUsageContext, wrapOpenAI } from '../openai/index.js';
import type { Fixture } from '../testing/provider-replay.js';
import { Conformance, expectConforms, fixtures } from './harness.js';

const messages = [{ role: 'user' as const, content: 'Hello' }];

describe('conformance: openai SDK wrapper', () => {
  const c = new Conformance();
  let openai: OpenAI;
  beforeAll(async () => {
    await c.start();
    openai = wrapOpenAI(
      new OpenAI({ apiKey: 'sk-test', baseURL: `${c.replay.url}/v1`, maxRetries: 0 }),
      {
        tokenwatch: c.tokenwatch,
      },
    );
  });
  afterAll(() => c.stop());

  async function call(f: Fixture): Promise<unknown> {
    switch (f.api) {
      case 'chat':
        return openai.chat.completions.create({ model: f.modelId, messages });
      case 'chat-stream': {
        const seen: unknown[] = [];
        for await (const chunk of await openai.chat.completions.create({
          model: f.modelId,
          messages,
          stream: true,
        })) {
          expect(chunk.choices.length).toBeGreaterThan(0); // the injected usage chunk stays hidden
          seen.push(chunk);
        }
        return seen;
      }
      case 'responses':
        return openai.responses.create({ model: f.modelId, input: 'Hello' });
      case 'responses-stream': {
        const seen: unknown[] = [];
        for await (const ev of await openai.responses.create({
          model: f.modelId,
          input: 'Hello',
          stream: true,
        }))
          seen.push(ev);
        return seen;
      }
      default:
        throw new Error(f.api);
    }
  }

  for (const f of fixtures.openai) {
    it(`${f.name} (${f.api})`, async () => {
      const events = await c.run(f, () =>
        withUsageContext({ userId: 'u-openai', appId: 'oa' }, () => call(f)),
      );
      expectConforms(events, f, { userId: 'u-openai', appId: 'oa' });
      if (f.api === 'chat-stream') {
        expect(c.replay.lastRequest()?.body?.stream_options).toEqual({ include_usage: true });
      }
    });
  }

  it('the chat.completions.stream() helper goes through the wrapper', async () => {
    const f = fixtures.openai.find((x) => x.api === 'chat-stream')!;
    let text = '';
    const events = await c.run(f, async () => {
      const stream = openai.chat.completions.stream({ model: f.modelId, messages });
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
      await stream.finalChatCompletion();
    });
    expect(text).toBe('Hello');
    expectConforms(events, f, { userId: 'anonymous' });
  });

  it('keeps the usage chunk for callers who asked for it, and leaves withResponse() intact', async () => {
    const f = fixtures.openai.find((x) => x.api === 'chat-stream')!;
    let usageChunks = 0;
    await c.run(f, async () => {
      const s = await openai.chat.completions.create({
        model: f.modelId,
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      for await (const chunk of s) if (chunk.usage) usageChunks++;
    });
    expect(usageChunks).toBe(1);
    const g = fixtures.openai.find((x) => x.name === 'openai-chat')!;
    const events = await c.run(g, async () => {
      const { data, response } = await openai.chat.completions
        .create({ model: g.modelId, messages })
        .withResponse();
      expect(data.usage?.prompt_tokens).toBe(120);
      expect(response.status).toBe(200);
    });
    expect(events).toHaveLength(1);
  });
});

describe('conformance: LangChain ChatOpenAI + TokenwatchCallbackHandler', () => {
  const c = new Conformance();
  let handler: TokenwatchCallbackHandler;
  beforeAll(async () => {
    await c.start();
    handler = new TokenwatchCallbackHandler({ tokenwatch: c.tokenwatch, appId: 'lc-openai' });
  });
  afterAll(() => c.stop());

  for (const f of fixtures.openai) {
    it(`${f.name} (${f.api})`, async () => {
      const model = new ChatOpenAI({
        model: f.modelId,
        apiKey: 'sk-test',
        maxRetries: 0,
        useResponsesApi: f.api.startsWith('responses'),
        configuration: { baseURL: `${c.replay.url}/v1` },
      });
      const config = {
        callbacks: [handler],
        metadata: { userId: 'u-lc', tags: { feature: 'qa' } },
      };
      const events = await c.run(f, async () => {
        if (!f.api.endsWith('-stream')) return model.invoke('Hello', config);
        for await (const _ of await model.stream('Hello', config)) {
          // drain
        }
        return undefined;
      });
      expectConforms(events, f, { userId: 'u-lc', appId: 'lc-openai' });
      expect(events[0]!.tags).toEqual({ feature: 'qa' });
    });
  }
});
