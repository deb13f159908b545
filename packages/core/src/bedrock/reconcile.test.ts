import { describe, expect, it } from 'vitest';
import { reconcileHours, summariseReconciliation } from './reconcile.js';

const H = 3_600_000;
const T = Date.UTC(2026, 10, 27, 0);
const HAIKU = 'anthropic.claude-3-haiku-20240307-v1:0';
const SONNET = 'us.anthropic.claude-sonnet-4-5-20250929-v1:0';

describe('reconcileHours', () => {
  const base = {
    fromMs: T,
    toMs: T + 3 * H,
    nowMs: T + 3 * H + 20 * 60_000,
    settleMs: 15 * 60_000,
  };

  it('compares per model, hour and class; a gap is reported exactly, matched hours are zero', () => {
    const rows = reconcileHours({
      ...base,
      published: [
        { modelId: HAIKU, metric: 'inputTokens' },
        { modelId: HAIKU, metric: 'outputTokens' },
        // CloudWatch names the profile by its ARN here; tokenwatch stores the profile id.
        {
          modelId: `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${SONNET}`,
          metric: 'cacheReadTokens',
        },
      ],
      reported: [
        { modelId: HAIKU, hourStartMs: T, metric: 'inputTokens', value: 1000 },
        { modelId: HAIKU, hourStartMs: T, metric: 'outputTokens', value: 200 },
        { modelId: HAIKU, hourStartMs: T + H, metric: 'inputTokens', value: 700 },
        {
          modelId: `arn:aws:bedrock:us-east-1:123456789012:inference-profile/${SONNET}`,
          hourStartMs: T + 2 * H,
          metric: 'cacheReadTokens',
          value: 4096,
        },
      ],
      captured: [
        {
          modelId: HAIKU,
          hourStartMs: T,
          inputTokens: 1000,
          outputTokens: 200,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
        },
        {
          modelId: HAIKU,
          hourStartMs: T + H,
          inputTokens: 455,
          outputTokens: 0,
          cacheReadTokens: 0,
          cacheWriteTokens: 0,
        },
        {
          modelId: SONNET,
          hourStartMs: T + 2 * H,
          inputTokens: 10,
          outputTokens: 5,
          cacheReadTokens: 4096,
          cacheWriteTokens: 64,
        },
      ],
    });
    expect(rows).toEqual([
      {
        modelId: HAIKU,
        hourStartMs: T,
        metric: 'inputTokens',
        reported: 1000,
        captured: 1000,
        difference: 0,
        percent: 0,
        settled: true,
      },
      {
        modelId: HAIKU,
        hourStartMs: T,
        metric: 'outputTokens',
        reported: 200,
        captured: 200,
        difference: 0,
        percent: 0,
        settled: true,
      },
      {
        modelId: HAIKU,
        hourStartMs: T + H,
        metric: 'inputTokens',
        reported: 700,
        captured: 455,
        difference: 245,
        percent: 35,
        settled: true,
      },
      // Input and output of a captured model are compared even where CloudWatch has no series.
      {
        modelId: SONNET,
        hourStartMs: T + 2 * H,
        metric: 'inputTokens',
        reported: 0,
        captured: 10,
        difference: -10,
        percent: null,
        settled: true,
      },
      {
        modelId: SONNET,
        hourStartMs: T + 2 * H,
        metric: 'outputTokens',
        reported: 0,
        captured: 5,
        difference: -5,
        percent: null,
        settled: true,
      },
      {
        modelId: SONNET,
        hourStartMs: T + 2 * H,
        metric: 'cacheReadTokens',
        reported: 4096,
        captured: 4096,
        difference: 0,
        percent: 0,
        settled: true,
      },
      // cacheWriteTokens: not published for the model, so never a false gap.
    ]);
  });

  it('an hour that ended less than the settle time ago is not settled; hours outside are ignored', () => {
    const rows = reconcileHours({
      ...base,
      nowMs: T + 3 * H + 5 * 60_000,
      published: [{ modelId: HAIKU, metric: 'inputTokens' }],
      reported: [
        { modelId: HAIKU, hourStartMs: T - H, metric: 'inputTokens', value: 5 },
        { modelId: HAIKU, hourStartMs: T + 2 * H, metric: 'inputTokens', value: 9 },
      ],
      captured: [],
    });
    expect(rows.map((r) => [r.hourStartMs, r.reported, r.settled])).toEqual([
      [T + 2 * H, 9, false],
    ]);
  });
});

describe('summariseReconciliation', () => {
  it('sums both sides, the uncaptured and over-captured tokens and the drift', () => {
    expect(
      summariseReconciliation([
        { reported: 1000, captured: 1000 },
        { reported: 700, captured: 455 },
        { reported: 0, captured: 15 },
      ]),
    ).toEqual({
      reported: 1700,
      captured: 1470,
      uncaptured: 245,
      overCaptured: 15,
      driftPercent: 14.41,
    });
    expect(summariseReconciliation([]).driftPercent).toBeNull();
  });
});
