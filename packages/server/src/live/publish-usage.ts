import type { PricedEvent } from '@tokenwatch/core';
import type { LiveFeed } from './live-feed.js';

const MAX_NAMES = 50;

/** Summarises a committed flush per project and tells that project's live subscribers. */
export function publishUsage(
  feed: LiveFeed,
  accepted: readonly PricedEvent[],
  nowMs: number,
): void {
  const byProject = new Map<
    string,
    {
      events: number;
      tokens: number;
      cost: bigint;
      users: Set<string>;
      apps: Set<string>;
      models: Set<string>;
    }
  >();
  for (const e of accepted) {
    if (!feed.hasListeners(e.projectId)) continue;
    let s = byProject.get(e.projectId);
    if (!s) {
      s = { events: 0, tokens: 0, cost: 0n, users: new Set(), apps: new Set(), models: new Set() };
      byProject.set(e.projectId, s);
    }
    s.events++;
    s.tokens += e.inputTokens + e.outputTokens + e.cacheReadTokens + e.cacheWriteTokens;
    s.cost += BigInt(e.costNanoUsd);
    if (s.users.size < MAX_NAMES) s.users.add(e.userId);
    if (s.apps.size < MAX_NAMES) s.apps.add(e.appId);
    if (s.models.size < MAX_NAMES) s.models.add(e.modelId);
  }
  for (const [projectId, s] of byProject) {
    feed.publish(projectId, {
      type: 'usage',
      atMs: nowMs,
      events: s.events,
      totalTokens: s.tokens,
      costNanoUsd: s.cost.toString(),
      users: [...s.users],
      apps: [...s.apps],
      models: [...s.models],
    });
  }
}
