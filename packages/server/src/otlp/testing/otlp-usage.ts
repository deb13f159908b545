import type { TokenwatchApi, UsageRowJson } from '../../testing/tokenwatch-api.js';

/** The stored measures of one (user, app, model) the OTLP tests compare exactly. */
export interface StoredUsage {
  inputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  outputTokens: number;
  requests: number;
  errors: number;
  costNanoUsd: bigint;
}

export type UsageByKey = Map<string, StoredUsage>;

export function usageKey(user: string, app: string, model: string): string {
  return `${user} | ${app} | ${model}`;
}

/** Everything stored in the key's project, by user × app × model. */
export async function storedUsage(api: TokenwatchApi, adminKey: string): Promise<UsageByKey> {
  const rows: UsageRowJson[] = await api.usageRows(adminKey, {
    groupBy: 'user,app,model',
    limit: '10000',
  });
  return new Map(
    rows.map((r) => [
      usageKey(r.user as string, r.app as string, r.model as string),
      {
        inputTokens: r.inputTokens,
        cacheReadTokens: r.cacheReadTokens,
        cacheWriteTokens: r.cacheWriteTokens,
        outputTokens: r.outputTokens,
        requests: r.requests,
        errors: r.errors,
        costNanoUsd: BigInt(r.costNanoUsd),
      },
    ]),
  );
}

/** What was added between two snapshots (keys whose usage did not change are left out). */
export function usageDelta(before: UsageByKey, after: UsageByKey): UsageByKey {
  const out: UsageByKey = new Map();
  for (const [key, a] of after) {
    const b = before.get(key);
    const d: StoredUsage = {
      inputTokens: a.inputTokens - (b?.inputTokens ?? 0),
      cacheReadTokens: a.cacheReadTokens - (b?.cacheReadTokens ?? 0),
      cacheWriteTokens: a.cacheWriteTokens - (b?.cacheWriteTokens ?? 0),
      outputTokens: a.outputTokens - (b?.outputTokens ?? 0),
      requests: a.requests - (b?.requests ?? 0),
      errors: a.errors - (b?.errors ?? 0),
      costNanoUsd: a.costNanoUsd - (b?.costNanoUsd ?? 0n),
    };
    if (d.requests !== 0 || d.inputTokens !== 0 || d.outputTokens !== 0) out.set(key, d);
  }
  return out;
}

/** Prices in USD per 1M tokens: input, output, cache read, cache write. */
export type Price = readonly [string, string, string, string];

function nanoPerMTok(usd: string): bigint {
  const [whole, frac = ''] = usd.split('.');
  return BigInt(whole ?? '0') * 1_000_000_000n + BigInt(`${frac}000000000`.slice(0, 9));
}

/**
 * The oracle for a cost: classes × list prices, summed, divided once rounding half up (the
 * contract's rule), written out here rather than taken from the pricing code under test.
 */
export function expectedCost(
  price: Price,
  t: {
    inputTokens: number;
    outputTokens: number;
    cacheReadTokens: number;
    cacheWriteTokens: number;
  },
): bigint {
  const sum =
    BigInt(t.inputTokens) * nanoPerMTok(price[0]) +
    BigInt(t.outputTokens) * nanoPerMTok(price[1]) +
    BigInt(t.cacheReadTokens) * nanoPerMTok(price[2]) +
    BigInt(t.cacheWriteTokens) * nanoPerMTok(price[3]);
  return (sum + 500_000n) / 1_000_000n;
}

/** List prices used by the OTLP tests (the bundled catalog's; README § Pricing). */
export const PRICES = {
  claudeSonnet45: ['3', '15', '0.3', '3.75'] as Price,
  // OpenAI has no cache-write price: writes are charged at the input price.
  gpt4oMini: ['0.15', '0.6', '0.075', '0.15'] as Price,
};

export function usage(
  price: Price,
  t: {
    inputTokens: number;
    outputTokens: number;
    cacheReadTokens?: number;
    cacheWriteTokens?: number;
    requests?: number;
    errors?: number;
  },
): StoredUsage {
  const classes = {
    inputTokens: t.inputTokens,
    outputTokens: t.outputTokens,
    cacheReadTokens: t.cacheReadTokens ?? 0,
    cacheWriteTokens: t.cacheWriteTokens ?? 0,
  };
  const requests = t.requests ?? 1;
  return {
    ...classes,
    requests,
    errors: t.errors ?? 0,
    costNanoUsd: expectedCost(price, classes),
  };
}

/** `usage` for several identical calls: classes and cost times n (cost is rounded per event). */
export function times(u: StoredUsage, n: number): StoredUsage {
  return {
    inputTokens: u.inputTokens * n,
    cacheReadTokens: u.cacheReadTokens * n,
    cacheWriteTokens: u.cacheWriteTokens * n,
    outputTokens: u.outputTokens * n,
    requests: u.requests * n,
    errors: u.errors * n,
    costNanoUsd: u.costNanoUsd * BigInt(n),
  };
}
