import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import {
  BedrockRuntimeClient,
  ConverseStreamCommand,
  InvokeModelWithResponseStreamCommand,
} from '@aws-sdk/client-bedrock-runtime';
import { ChatAnthropic } from '@langchain/anthropic';
import { ChatBedrockConverse } from '@langchain/aws';
import { streamText, wrapLanguageModel } from 'ai';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenwatchMiddleware } from '../ai-sdk/index.js';
import { wrapAnthropic } from '../anthropic/index.js';
import { instrumentBedrock } from '../bedrock/index.js';
import { TokenwatchCallbackHandler } from '../langchain/index.js';
import { wrapOpenAI } from '../openai/index.js';
import { Conformance, fixtures } from './harness.js';

/**
 * Issue 10, "calls without usage": a call whose usage never arrives is recorded as `no_usage`
 * (never a 0-token success), and a stream its caller stops reading early is recorded with what
 * was known of its usage and the tag `tokenwatch.stream: "abandoned"`. The fixture cases (a
 * proxy dropping usage) run in every integration's conformance suite; these are the rest.
 */
const fixture = (name: string) =>
  [...fixtures.openai, ...fixtures.anthropic, ...fixtures.bedrock].find((f) => f.name === name)!;

const counts = (e: Record<string, unknown>) => ({
  inputTokens: e.inputTokens,
  outputTokens: e.outputTokens,
  cacheReadTokens: e.cacheReadTokens,
  cacheWriteTokens: e.cacheWriteTokens,
  status: e.status,
});
const ABANDONED = { 'tokenwatch.stream': 'abandoned' };
const none = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };

describe('calls without usage and abandoned streams', () => {
  const c = new Conformance();
  const bedrockClient = () =>
    new BedrockRuntimeClient({
      region: 'us-east-1',
      endpoint: c.replay.h2url,
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
      maxAttempts: 1,
    });
  beforeAll(() => c.start());
  afterAll(() => c.stop());

  it('LangChain ChatAnthropic with streamUsage: false records no_usage, not a free success', async () => {
    const f = fixture('anthropic-messages-stream-cache-read');
    const handler = new TokenwatchCallbackHandler({ tokenwatch: c.tokenwatch });
    const model = new ChatAnthropic({
      model: f.modelId,
      apiKey: 'sk-ant-test',
      maxRetries: 0,
      anthropicApiUrl: c.replay.url,
      streamUsage: false,
    });
    const events = await c.run(f, async () => {
      for await (const _ of await model.stream('Hello', { callbacks: [handler] })) {
        // drain
      }
    });
    expect(events.map(counts)).toEqual([{ ...none, status: 'no_usage' }]);
    expect(events[0]?.tags).toBeUndefined(); // it ended: not abandoned
  });

  it('OpenAI: a stream left after its first chunk is abandoned, without usage', async () => {
    const f = fixture('openai-chat-stream-cache');
    const openai = wrapOpenAI(
      new OpenAI({ apiKey: 'sk-test', baseURL: `${c.replay.url}/v1`, maxRetries: 0 }),
      { tokenwatch: c.tokenwatch },
    );
    const events = await c.run(f, async () => {
      const stream = await openai.chat.completions.create({
        model: f.modelId,
        messages: [{ role: 'user', content: 'Hi' }],
        stream: true,
      });
      for await (const _ of stream) break;
    });
    expect(events.map(counts)).toEqual([{ ...none, status: 'no_usage' }]);
    expect(events[0]?.tags).toEqual(ABANDONED);
  });

  it('Anthropic: a stream left after message_start keeps the input it reported', async () => {
    const f = fixture('anthropic-messages-stream-cache-read');
    const anthropic = wrapAnthropic(
      new Anthropic({ apiKey: 'sk-ant-test', baseURL: c.replay.url, maxRetries: 0 }),
      { tokenwatch: c.tokenwatch, tags: { team: 'a' } },
    );
    const events = await c.run(f, async () => {
      const stream = await anthropic.messages.create({
        model: f.modelId,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Hi' }],
        stream: true,
      });
      for await (const _ of stream) break;
    });
    expect(events.map(counts)).toEqual([
      {
        inputTokens: 12,
        outputTokens: 1,
        cacheReadTokens: 3000,
        cacheWriteTokens: 0,
        status: 'no_usage',
      },
    ]);
    expect(events[0]?.tags).toEqual({ team: 'a', ...ABANDONED });
  });

  it('Anthropic: a stream read to its end after the usage is ok, even if left before message_stop', async () => {
    const f = fixture('anthropic-messages-stream-cache-read');
    const anthropic = wrapAnthropic(
      new Anthropic({ apiKey: 'sk-ant-test', baseURL: c.replay.url, maxRetries: 0 }),
      { tokenwatch: c.tokenwatch },
    );
    const events = await c.run(f, async () => {
      const stream = await anthropic.messages.create({
        model: f.modelId,
        max_tokens: 64,
        messages: [{ role: 'user', content: 'Hi' }],
        stream: true,
      });
      for await (const ev of stream) if (ev.type === 'message_delta') break;
    });
    expect(events.map(counts)).toEqual([f.expected]);
    expect(events[0]?.tags).toBeUndefined();
  });

  it('Bedrock: ConverseStream and InvokeModelWithResponseStream left early', async () => {
    const client = instrumentBedrock(bedrockClient(), { tokenwatch: c.tokenwatch });
    const converse = fixture('bedrock-converse-stream');
    const first = await c.run(converse, async () => {
      const out = await client.send(
        new ConverseStreamCommand({
          modelId: converse.modelId,
          messages: [{ role: 'user', content: [{ text: 'Hi' }] }],
        }),
      );
      for await (const _ of out.stream ?? []) break;
    });
    expect(first.map(counts)).toEqual([{ ...none, status: 'no_usage' }]);
    expect(first[0]?.tags).toEqual(ABANDONED);

    const invoke = fixture('bedrock-invoke-stream-anthropic');
    const second = await c.run(invoke, async () => {
      const out = await client.send(
        new InvokeModelWithResponseStreamCommand({
          modelId: invoke.modelId,
          body: JSON.stringify({
            anthropic_version: 'bedrock-2023-05-31',
            max_tokens: 64,
            messages: [{ role: 'user', content: 'Hi' }],
          }),
          contentType: 'application/json',
        }),
      );
      for await (const _ of out.body ?? []) break;
    });
    expect(second.map(counts)).toEqual([
      {
        inputTokens: 22,
        outputTokens: 1,
        cacheReadTokens: 512,
        cacheWriteTokens: 128,
        status: 'no_usage',
      },
    ]);
    expect(second[0]?.tags).toEqual(ABANDONED);
  });

  it('AI SDK: a stream cancelled before its finish part is abandoned', async () => {
    const f = fixture('openai-chat-stream-cache');
    const model = wrapLanguageModel({
      model: createOpenAI({ apiKey: 'sk-test', baseURL: `${c.replay.url}/v1` }).chat(f.modelId),
      middleware: tokenwatchMiddleware({ tokenwatch: c.tokenwatch }),
    });
    const events = await c.run(f, async () => {
      // The model's own stream, as streamText reads it, cancelled by its reader.
      const { stream } = await model.doStream({
        prompt: [{ role: 'user', content: [{ type: 'text', text: 'Hi' }] }],
      });
      const reader = stream.getReader();
      await reader.read();
      await reader.cancel();
    });
    expect(events.map(counts)).toEqual([{ ...none, status: 'no_usage' }]);
    expect(events[0]?.tags).toEqual(ABANDONED);
    // And read to its end, the same call is an ordinary one.
    const whole = await c.run(f, async () => {
      const r = streamText({ model, prompt: 'Hi', maxRetries: 0 });
      for await (const _ of r.fullStream) {
        // drain
      }
    });
    expect(whole.map(counts)).toEqual([f.expected]);
  });

  it('LangChain: a stream left early (no callback ever says so) is recorded once its silence outlasts abandonedAfterMs', async () => {
    const f = fixture('bedrock-converse-stream');
    // Long enough that a stream read to its end never looks silent on a loaded machine.
    const abandonedAfterMs = 1000;
    const handler = new TokenwatchCallbackHandler({ tokenwatch: c.tokenwatch, abandonedAfterMs });
    const model = new ChatBedrockConverse({
      model: f.modelId,
      region: 'us-east-1',
      client: bedrockClient(),
    });
    const swept = () =>
      [...c.collector.accepted.values()].some((e) => String(e.id).startsWith('lc-'));
    const events = await c.run(f, async () => {
      for await (const _ of await model.stream('Hi', { callbacks: [handler] })) break;
      // The sweep comes after the silence: wait for its record (bounded).
      for (const until = Date.now() + 15_000; !swept() && Date.now() < until; ) {
        await new Promise((r) => setTimeout(r, 50));
        await c.tokenwatch.flush();
      }
    });
    expect(events.map(counts)).toEqual([{ ...none, status: 'no_usage' }]);
    expect(events[0]?.tags).toEqual(ABANDONED);
    expect(events[0]?.id).toMatch(/^lc-/);
    // A stream read to its end in the same handler is recorded once, as it ended, not swept.
    const whole = await c.run(f, async () => {
      for await (const _ of await model.stream('Hi', { callbacks: [handler] })) {
        // drain
      }
      await new Promise((r) => setTimeout(r, abandonedAfterMs * 2));
    });
    expect(whole.map(counts)).toEqual([f.expected]);
  });
});
