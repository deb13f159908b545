import {
  BedrockRuntimeClient,
  ConverseCommand,
  ConverseStreamCommand,
  InvokeModelCommand,
  InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instrumentBedrock } from '../bedrock/index.js';
import type { Fixture } from '../testing/provider-replay.js';
import { Conformance, fixtures } from './harness.js';

/**
 * The middleware names each call `bedrock:<x-amzn-RequestId>`: the id the collector gives the same
 * call when it reads Bedrock's model invocation log (core `bedrockRequestEventId`), so an app that
 * has both is counted once.
 */
describe('Bedrock middleware: the event id is the AWS request id', () => {
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
  const body = JSON.stringify({
    anthropic_version: 'bedrock-2023-05-31',
    max_tokens: 256,
    messages: [{ role: 'user', content: 'Hello' }],
  });
  const drain = async (it: AsyncIterable<unknown> | undefined) => {
    for await (const _ of it ?? []) {
      // consume
    }
  };

  async function call(f: Fixture): Promise<void> {
    const modelId = f.modelId;
    if (f.api === 'converse') await client.send(new ConverseCommand({ modelId, messages }));
    else if (f.api === 'converse-stream')
      await drain((await client.send(new ConverseStreamCommand({ modelId, messages }))).stream);
    else if (f.api === 'invoke')
      await client.send(new InvokeModelCommand({ modelId, body, contentType: 'application/json' }));
    else
      await drain(
        (
          await client.send(
            new InvokeModelWithResponseStreamCommand({
              modelId,
              body,
              contentType: 'application/json',
            }),
          )
        ).body,
      );
  }

  fixtures.bedrock.forEach((f, i) => {
    const requestId = `0c7a9f1e-6d2b-4e8a-9b3c-${String(i).padStart(12, '0')}`;
    it(`${f.name}: id bedrock:${requestId}`, async () => {
      const withId: Fixture = {
        ...f,
        response: {
          ...f.response,
          headers: { ...f.response.headers, 'x-amzn-requestid': requestId },
        },
      };
      const events = await c.run(withId, () => call(withId));
      expect(events).toHaveLength(1);
      expect(events[0]?.id).toBe(`bedrock:${requestId}`);
    });
  });

  it('without a request id the SDK keeps its own UUIDv7', async () => {
    const f = fixtures.bedrock.find((x) => x.name === 'bedrock-converse-cache-read')!;
    const events = await c.run(f, () => call(f));
    expect(events[0]?.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/);
  });
});
