import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentBedrock, withUsageContext } from '../bedrock/index.js';
import type { Fixture } from '../testing/provider-replay.js';
import { Conformance, expectConforms, fixtures } from './harness.js';

describe('conformance: Bedrock runtime client middleware', () => {
  const c = new Conformance();
  let client: BedrockRuntimeClient;
  beforeAll(async () => {
    await c.start();
    client = instrumentBedrock(
      new BedrockRuntimeClient({
        region: 'us-east-1',
        endpoint: c.replay.h2url,
        credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
        maxAttempts: 1,
      }),
      { tokenwatch: c.tokenwatch, appId: 'bedrock-app' },
    );
  });
  afterAll(() => c.stop());

  const messages = [{ role: 'user' as const, content: [{ text: 'Hello' }] }];
  const anthropicBody = JSON.stringify({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Hello' }],
  });

  async function call(f: Fixture): Promise<unknown> {
    switch (f.api) {
      case 'converse':
        return client.send(new ConverseCommand({ modelId: f.modelId, messages }));
      case 'converse-stream': {
        const out = await client.send(new ConverseStreamCommand({ modelId: f.modelId, messages }));
        const text: string[] = [];
        for await (const ev of out.stream ?? [])
          if (ev.contentBlockDelta?.delta?.text) text.push(ev.contentBlockDelta.delta.text);
        return text;
      }
      case 'invoke': {
        const out = await client.send(
          new InvokeModelCommand({
            modelId: f.modelId,
            body: anthropicBody,
            contentType: 'application/json',
          }),
        );
        return JSON.parse(new TextDecoder().decode(out.body));
      }
      case 'invoke-stream': {
        const out = await client.send(
          new InvokeModelWithResponseStreamCommand({
            modelId: f.modelId,
            body: anthropicBody,
            contentType: 'application/json',
          }),
        );
        const chunks: unknown[] = [];
        for await (const ev of out.body ?? [])
          chunks.push(JSON.parse(new TextDecoder().decode(ev.chunk?.bytes)));
        return chunks;
      }
      default:
        throw new Error(`unexpected api ${f.api}`);
    }
  }

  for (const f of fixtures.bedrock) {
    it(`${f.name} (${f.api})`, async () => {
      const events = await c.run(f, () =>
        withUsageContext({ userId: `user-${f.name}` }, () => call(f)),
      );
      expectConforms(events, f, { userId: `user-${f.name}`, appId: 'bedrock-app' });
    });
  }

  it('passes the stream through unchanged', async () => {
    const f = fixtures.bedrock.find((x) => x.name === 'bedrock-converse-stream-cache')!;
    let text: unknown;
    await c.run(f, async () => {
      text = await call(f);
    });
    expect(text).toEqual(['Hello', ' world']);
  });

  it('attributes a stream to the context it was started in, even if consumed elsewhere', async () => {
    const f = fixtures.bedrock.find((x) => x.name === 'bedrock-converse-stream')!;
    const events = await c.run(f, async () => {
      const out = await withUsageContext({ userId: 'starter', tags: { feature: 'chat' } }, () =>
        client.send(new ConverseStreamCommand({ modelId: f.modelId, messages })),
      );
      await withUsageContext({ userId: 'consumer' }, async () => {
        for await (const _ of out.stream ?? []) {
          // drain
        }
      });
    });
    expectConforms(events, f, { userId: 'starter', appId: 'bedrock-app' });
    expect(events[0]!.tags).toEqual({ feature: 'chat' });
  });

  it('ignores other commands', async () => {
    const f = fixtures.bedrock[0]!;
    const { CountTokensCommand } = await import('@aws-sdk/client-bedrock-runtime');
    const events = await c.run({ ...f, expected: { ...f.expected, status: 'error' } }, () =>
      client.send(
        new CountTokensCommand({ modelId: f.modelId, input: { converse: { messages } } }),
      ),
    );
    expect(events).toHaveLength(0);
  });
});
