import { createAmazonBedrock } from '@ai-sdk/amazon-bedrock';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import { generateText, type LanguageModel, streamText, wrapLanguageModel } from 'ai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenwatchMiddleware, withUsageContext } from '../ai-sdk/index.js';
import type { Fixture } from '../testing/provider-replay.js';
import { Conformance, expectConforms, fixtures } from './harness.js';

describe('conformance: AI SDK (ai@6) middleware', () => {
  const c = new Conformance();
  beforeAll(() => c.start());
  afterAll(() => c.stop());

  function modelFor(f: Fixture): LanguageModel {
    let base: LanguageModel;
    if (f.provider === 'openai') {
      const openai = createOpenAI({ apiKey: 'sk-test', baseURL: `${c.replay.url}/v1` });
      base = f.api.startsWith('chat') ? openai.chat(f.modelId) : openai.responses(f.modelId);
    } else if (f.provider === 'anthropic') {
      base = createAnthropic({ apiKey: 'sk-ant-test', baseURL: `${c.replay.url}/v1` })(f.modelId);
    } else {
      base = createAmazonBedrock({
        region: 'us-east-1',
        accessKeyId: 'AKIDEXAMPLE',
        secretAccessKey: 'secret',
        baseURL: c.replay.url,
      })(f.modelId);
    }
    return wrapLanguageModel({
      model: base as Parameters<typeof wrapLanguageModel>[0]['model'],
      middleware: tokenwatchMiddleware({ tokenwatch: c.tokenwatch, appId: 'ai-app' }),
    });
  }

  const cases = [
    ...fixtures.openai,
    ...fixtures.anthropic,
    ...fixtures.bedrock.filter((f) => f.api === 'converse' || f.api === 'converse-stream'),
  ];

  for (const f of cases) {
    it(`${f.provider} ${f.name} (${f.api})`, async () => {
      const model = modelFor(f);
      const providerOptions = { tokenwatch: { userId: 'u-ai', tags: { feature: 'ai' } } };
      const events = await c.run(
        f,
        async () => {
          if (!f.api.endsWith('-stream')) {
            return generateText({ model, prompt: 'Hello', maxRetries: 0, providerOptions });
          }
          const r = streamText({
            model,
            prompt: 'Hello',
            maxRetries: 0,
            providerOptions,
            onError: () => undefined,
          });
          for await (const _ of r.fullStream) {
            // drain
          }
          return undefined;
        },
        'ai-sdk',
      );
      expectConforms(events, f, { userId: 'u-ai', appId: 'ai-app' }, 'ai-sdk');
      expect(events[0]!.tags).toEqual({ feature: 'ai' });
    });
  }

  it('reads the user from withUsageContext too', async () => {
    const f = fixtures.openai[0]!;
    const events = await c.run(f, () =>
      withUsageContext({ userId: 'ctx-user' }, () =>
        generateText({ model: modelFor(f), prompt: 'Hi', maxRetries: 0 }),
      ),
    );
    expectConforms(events, f, { userId: 'ctx-user', appId: 'ai-app' });
  });
});
