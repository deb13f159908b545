import { expect } from 'vitest';
import { createTokenwatch } from '../client.js';
import type { Tokenwatch } from '../client-options.js';
import { LoopbackReceiver } from '../testing/loopback-receiver.js';
import {
  expectedFor,
  type Fixture,
  loadFixtures,
  ProviderReplayServer,
} from '../testing/provider-replay.js';

export const fixtures = {
  bedrock: loadFixtures(new URL('./fixtures/bedrock.json', import.meta.url)),
  openai: loadFixtures(new URL('./fixtures/openai.json', import.meta.url)),
  anthropic: loadFixtures(new URL('./fixtures/anthropic.json', import.meta.url)),
};

/**
 * A provider stand-in, a collector stand-in and a real client between them: each case runs a
 * real client library against a fixture and returns the events that reached the collector.
 */
export class Conformance {
  readonly replay = new ProviderReplayServer();
  readonly collector = new LoopbackReceiver();
  tokenwatch!: Tokenwatch;
  private seen = 0;

  async start(): Promise<this> {
    await this.replay.start();
    await this.collector.start();
    this.tokenwatch = createTokenwatch({
      endpoint: this.collector.url,
      apiKey: 'tw_conformance',
      appId: 'conformance-app',
      flushOnExit: false,
    });
    return this;
  }

  async stop(): Promise<void> {
    await this.tokenwatch.shutdown({ timeoutMs: 100 });
    await this.replay.stop();
    await this.collector.stop();
  }

  /** Serves `fixture`, runs `call` (errors are the fixture's business), returns the new events. */
  async run(
    fixture: Fixture,
    call: () => Promise<unknown>,
    integration?: 'ai-sdk' | 'langchain',
  ): Promise<Record<string, unknown>[]> {
    this.replay.serve(fixture);
    try {
      await call();
    } catch (err) {
      if (expectedFor(fixture, integration).status !== 'error') throw err;
    }
    await this.tokenwatch.flush();
    const all = [...this.collector.accepted.values()];
    const fresh = all.slice(this.seen);
    this.seen = all.length;
    return fresh;
  }
}

/** The conformance assertion: exactly one event, with exactly the table's token counts. */
export function expectConforms(
  events: Record<string, unknown>[],
  fixture: Fixture,
  who: { userId: string; appId?: string; provider?: string; modelId?: string },
  integration?: 'ai-sdk' | 'langchain',
): void {
  expect(events, `${fixture.name}: events`).toHaveLength(1);
  const e = events[0] as Record<string, unknown>;
  expect(
    {
      inputTokens: e.inputTokens,
      outputTokens: e.outputTokens,
      cacheReadTokens: e.cacheReadTokens,
      cacheWriteTokens: e.cacheWriteTokens,
      status: e.status,
    },
    fixture.name,
  ).toEqual(expectedFor(fixture, integration));
  expect(e.userId, `${fixture.name}: userId`).toBe(who.userId);
  expect(e.appId).toBe(who.appId ?? 'conformance-app');
  expect(e.provider).toBe(who.provider ?? fixture.provider);
  expect(e.modelId).toBe(who.modelId ?? fixture.modelId);
  expect(typeof e.latencyMs).toBe('number');
}
