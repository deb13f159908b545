import { TokenwatchError } from '../errors.js';
import type { ResolvedPrice } from './price-catalog.js';

/** Token counts of one event, by billing class. */
export interface TokenCounts {
  /** UNCACHED input tokens (Bedrock / Anthropic meaning), billed at the input price. */
  inputTokens: number;
  /** Output tokens, reasoning included. */
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

const TOKENS_PER_PRICE_UNIT = 1_000_000n;
const NANO_PER_USD = 1_000_000_000n;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function tokens(value: number, field: string): bigint {
  if (!Number.isSafeInteger(value) || value < 0) {
    const reason = `must be a non-negative safe integer, got ${String(value)}`;
    throw new TokenwatchError('invalid_argument', `${field}: ${reason}`, {
      details: [{ field, reason }],
    });
  }
  return BigInt(value);
}

/**
 * Exact cost of one event in integer nano-USD (1e-9 USD).
 *
 * Each token class is multiplied by its price in nano-USD per 1M tokens with BigInt, the products
 * are summed, and the sum is divided by 1 000 000 rounding half up, once per event: per-class
 * rounding would drift, and summing the per-event integers later stays exact. The error against
 * the true cost is at most 0.5 nano-USD per event.
 *
 * Throws a `TokenwatchError` (`invalid_argument`) when a count is not a non-negative safe integer,
 * a price is negative, or the result is not a safe integer (only with absurd counts × prices:
 * 1e9 tokens of each class at 75 USD per 1M tokens is 3e14 nano-USD, far below 2^53).
 */
export function costNanoUsd(price: ResolvedPrice, t: TokenCounts): number {
  const prices = [
    price.inputNanoPerMTok,
    price.outputNanoPerMTok,
    price.cacheReadNanoPerMTok,
    price.cacheWriteNanoPerMTok,
  ];
  if (prices.some((p) => p < 0n)) {
    const reason = `negative price for ${price.provider} ${price.modelId}`;
    throw new TokenwatchError('invalid_argument', `price: ${reason}`, {
      details: [{ field: 'price', reason }],
    });
  }
  const total =
    tokens(t.inputTokens, 'inputTokens') * price.inputNanoPerMTok +
    tokens(t.outputTokens, 'outputTokens') * price.outputNanoPerMTok +
    tokens(t.cacheReadTokens, 'cacheReadTokens') * price.cacheReadNanoPerMTok +
    tokens(t.cacheWriteTokens, 'cacheWriteTokens') * price.cacheWriteNanoPerMTok;
  const nano = (total + TOKENS_PER_PRICE_UNIT / 2n) / TOKENS_PER_PRICE_UNIT;
  if (nano > MAX_SAFE) {
    const reason = `cost ${nano} nano-USD is above Number.MAX_SAFE_INTEGER`;
    throw new TokenwatchError('invalid_argument', `cost: ${reason}`, {
      details: [{ field: 'cost', reason }],
    });
  }
  return Number(nano);
}

/**
 * Exact decimal USD string of a nano-USD amount: 9 decimals with trailing zeros trimmed, at least
 * 2 kept (`10_972_500` → `'0.0109725'`, `1_500_000_000n` → `'1.50'`, `0` → `'0.00'`). Negative
 * amounts get a leading `-`. Throws a `TokenwatchError` (`invalid_argument`) for a number that is
 * not a safe integer.
 */
export function formatNanoUsd(nano: number | bigint): string {
  if (typeof nano === 'number' && !Number.isSafeInteger(nano)) {
    const reason = `must be a safe integer number of nano-USD, got ${String(nano)}`;
    throw new TokenwatchError('invalid_argument', `nano: ${reason}`, {
      details: [{ field: 'nano', reason }],
    });
  }
  const value = BigInt(nano);
  const negative = value < 0n;
  const abs = negative ? -value : value;
  const whole = abs / NANO_PER_USD;
  const fraction = (abs % NANO_PER_USD).toString().padStart(9, '0').replace(/0+$/, '');
  return `${negative ? '-' : ''}${whole}.${fraction.padEnd(2, '0')}`;
}
