import { BedrockRuntimeClient } from '@aws-sdk/client-bedrock-runtime';
import { ChatBedrockConverse } from '@langchain/aws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TokenwatchCallbackHandler } from '../langchain/index.js';
import { Conformance, expectConforms, fixtures } from './harness.js';

const cases = fixtures.bedrock.filter((f) => f.api === 'converse' || f.api === 'converse-stream');

describe('conformance: LangChain ChatBedrockConverse + TokenwatchCallbackHandler (the seed path)', () => {
  const c = new Conformance();
  let handler: TokenwatchCallbackHandler;
  beforeAll(async () => {
    await c.start();
    handler = new TokenwatchCallbackHandler({ tokenwatch: c.tokenwatch });
  });
  afterAll(() => c.stop());

  const model = (modelId: string) =>
    new ChatBedrockConverse({
      model: modelId,
      region: 'us-east-1',
      client: new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: c.replay.h2url,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
        maxAttempts: 1,
      }),
    });

  for (const f of cases) {
    it(`${f.name} (${f.api})`, async () => {
      const config = {
        callbacks: [handler],
        metadata: { userId: `user-${f.name}`, appId: 'seed-app' },
      };
      const events = await c.run(f, async () => {
        if (f.api === 'converse')
          return model(f.modelId).invoke('What is the capital of France?', config);
        const chunks = [];
        for await (const chunk of await model(f.modelId).stream('Say hello', config))
          chunks.push(chunk);
        return chunks;
      });
      expectConforms(events, f, { userId: `user-${f.name}`, appId: 'seed-app' });
      const req = c.replay.lastRequest();
      expect(req?.headers.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE\//);
    });
  }

  it('metadata set on an outer runnable reaches nested model calls', async () => {
    const f = cases[0]!;
    const { RunnableLambda } = await import('@langchain/core/runnables');
    const chain = RunnableLambda.from(async (q: string, config) =>
      model(f.modelId).invoke(q, config),
    );
    const events = await c.run(f, () =>
      chain.invoke('hi', { callbacks: [handler], metadata: { userId: 'nested-user' } }),
    );
    expectConforms(events, f, { userId: 'nested-user' });
  });

  it('does not count LLM-cache hits as provider usage', async () => {
    const f = cases[0]!;
    const { InMemoryCache } = await import('@langchain/core/caches');
    const cached = new ChatBedrockConverse({
      model: f.modelId,
      region: 'us-east-1',
      cache: new InMemoryCache(),
      client: new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: c.replay.h2url,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      }),
    });
    const first = await c.run(f, () => cached.invoke('same prompt', { callbacks: [handler] }));
    expect(first).toHaveLength(1);
    const second = await c.run(f, () => cached.invoke('same prompt', { callbacks: [handler] }));
    expect(second).toHaveLength(0);
  });
});
