import type { PricedEvent } from '@tokenwatch/core';
import type { LiveFeed, LiveMessage } from './live-feed.js';

const MAX_NAMES = 50;

export type UsageMessage = Extract<LiveMessage, { type: 'usage' }>;

/**
 * One `usage` notice per project touched by the committed (accepted) events; projects for which
 * `wanted` says no are skipped without being summed.
 */
export function summariseUsage(
  accepted: readonly PricedEvent[],
  nowMs: number,
  wanted: (projectId: string) => boolean = () => true,
): Map<string, UsageMessage> {
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
    let s = byProject.get(e.projectId);
    if (!s) {
      if (!wanted(e.projectId)) continue;
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
  const out = new Map<string, UsageMessage>();
  for (const [projectId, s] of byProject) {
    out.set(projectId, {
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
  return out;
}

/** Summarises a committed flush per project and tells that project's live subscribers. */
export function publishUsage(
  feed: LiveFeed,
  accepted: readonly PricedEvent[],
  nowMs: number,
): void {
  for (const [projectId, message] of summariseUsage(accepted, nowMs, (p) => feed.hasListeners(p))) {
    feed.publish(projectId, message);
  }
}
