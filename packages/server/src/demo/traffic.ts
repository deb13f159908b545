import { uuidv7 } from '../util/uuidv7.js';

/** A wire event as the SDK would send it. */
export interface WireEvent {
  id: string;
  timestamp: number;
  userId: string;
  appId: string;
  modelId: string;
  provider: string;
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  latencyMs: number;
  status: 'ok' | 'error';
  tags?: Record<string, string>;
}

export const DEMO_APPS = [
  'chat-assistant',
  'doc-summarizer',
  'code-review',
  'support-bot',
  'search-rerank',
];

/** 20 Bedrock models with a popularity weight; one application-profile ARN stays unpriced on purpose. */
export const DEMO_MODELS: Array<[string, number]> = [
  ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 20],
  ['anthropic.claude-3-5-haiku-20241022-v1:0', 14],
  ['us.anthropic.claude-haiku-4-5-20251001-v1:0', 12],
  ['amazon.nova-lite-v1:0', 10],
  ['amazon.nova-micro-v1:0', 8],
  ['amazon.nova-pro-v1:0', 6],
  ['global.anthropic.claude-sonnet-4-6', 6],
  ['anthropic.claude-3-haiku-20240307-v1:0', 5],
  ['meta.llama3-3-70b-instruct-v1:0', 4],
  ['meta.llama3-1-8b-instruct-v1:0', 3],
  ['mistral.mistral-large-2407-v1:0', 2],
  ['mistral.mixtral-8x7b-instruct-v0:1', 2],
  ['cohere.command-r-plus-v1:0', 2],
  ['cohere.command-r-v1:0', 1],
  ['deepseek.v3-v1:0', 1],
  ['eu.amazon.nova-pro-v1:0', 1],
  ['apac.amazon.nova-lite-v1:0', 1],
  ['us.anthropic.claude-opus-4-5-20251101-v1:0', 1],
  ['openai.gpt-oss-120b-1:0', 1],
  ['arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/demo-team-profile', 1],
];

const TEAMS = ['growth', 'platform', 'support', 'research'];
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Deterministic PRNG (mulberry32) so a seed reproduces the same traffic. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Samples index i with probability ∝ weight[i]. */
function sampler(weights: number[], random: () => number): () => number {
  const cumulative: number[] = [];
  let sum = 0;
  for (const w of weights) {
    sum += w;
    cumulative.push(sum);
  }
  return () => {
    const x = random() * sum;
    let lo = 0;
    let hi = cumulative.length - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((cumulative[mid] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

export interface TrafficOptions {
  users: number;
  seed: number;
  /** Event times: `now` minus up to `spreadMs`, shaped by a daily rhythm (peak 14:00 UTC). */
  nowMs: number;
  spreadMs: number;
  /** Tag some events (team, feature) as real apps do. */
  tags?: boolean;
}

/**
 * Realistic synthetic usage: a long tail of users (Zipf, s = 1.1: a few heavy users, thousands
 * that call rarely), several apps, 20 Bedrock models by popularity, log-normal token counts,
 * prompt caching on Claude, ~1% errors.
 */
export function createTrafficGenerator(options: TrafficOptions): () => WireEvent {
  const random = rng(options.seed);
  const userIndex = sampler(
    Array.from({ length: options.users }, (_, i) => 1 / (i + 1) ** 1.1),
    random,
  );
  const modelIndex = sampler(
    DEMO_MODELS.map(([, w]) => w),
    random,
  );
  const appIndex = sampler([40, 25, 15, 12, 8], random);
  const hourWeight = sampler(
    Array.from({ length: 24 }, (_, h) => 1.2 + Math.cos(((h - 14) / 24) * 2 * Math.PI)),
    random,
  );
  const logNormal = (median: number, sigma: number) =>
    Math.max(
      1,
      Math.round(
        median *
          Math.exp(
            sigma * Math.sqrt(-2 * Math.log(random() || 1e-9)) * Math.cos(2 * Math.PI * random()),
          ),
      ),
    );
  return () => {
    let timestamp = options.nowMs;
    if (options.spreadMs > 0) {
      // A day in the window, an hour of that day by the rhythm, a moment in that hour.
      const days = Math.max(1, Math.ceil(options.spreadMs / DAY_MS));
      const dayStart =
        options.nowMs - (options.nowMs % DAY_MS) - Math.floor(random() * days) * DAY_MS;
      timestamp = dayStart + hourWeight() * HOUR_MS + Math.floor(random() * HOUR_MS);
      if (timestamp > options.nowMs) timestamp -= DAY_MS;
      if (timestamp < options.nowMs - options.spreadMs)
        timestamp = options.nowMs - Math.floor(random() * options.spreadMs);
    }
    const [modelId] = DEMO_MODELS[modelIndex()] as [string, number];
    const claude = modelId.includes('anthropic.');
    const input = logNormal(900, 0.9);
    const cached = claude && random() < 0.35 ? Math.round(input * (1 + random() * 3)) : 0;
    const event: WireEvent = {
      id: uuidv7(timestamp),
      timestamp,
      userId: `user-${String(userIndex() + 1).padStart(5, '0')}`,
      appId: DEMO_APPS[appIndex()] as string,
      modelId,
      provider: 'bedrock',
      inputTokens: input,
      outputTokens: logNormal(250, 0.8),
      cacheReadTokens: cached,
      cacheWriteTokens: claude && random() < 0.05 ? logNormal(1500, 0.5) : 0,
      latencyMs: logNormal(900, 0.6),
      status: random() < 0.01 ? 'error' : 'ok',
    };
    if (options.tags && random() < 0.5) {
      event.tags = { team: TEAMS[Math.floor(random() * TEAMS.length)] as string, env: 'prod' };
    }
    return event;
  };
}
