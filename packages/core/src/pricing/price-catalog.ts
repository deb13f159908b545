import { TokenwatchError } from '../errors.js';
import type { ModelRef } from '../model/model-ref.js';
import { normaliseProvider } from '../model/provider.js';

/**
 * One dated price of one model, as written in a catalog or a price override. Prices are USD per
 * one million tokens as decimal strings (`'3.30'`), never floats, so that cost stays exact.
 */
export interface ModelPriceEntry {
  /** Canonical provider (`bedrock`, `openai`, `anthropic`, …); aliases like `aws.bedrock` fold. */
  provider: string;
  /** Catalog key: the model id exactly as `ModelRef.priceKeys` spells it (geo prefix included). */
  modelId: string;
  /** First day (`YYYY-MM-DD`, from UTC midnight) this price applies. */
  effectiveFrom: string;
  /** Uncached input tokens. */
  input: string;
  output: string;
  /** Cache-read input tokens; when absent the input price is charged (see {@link PriceCatalog}). */
  cacheRead?: string;
  /** Cache-write (creation) input tokens; when absent the input price is charged. */
  cacheWrite?: string;
}

export interface PriceCatalogData {
  /** Date or tag of this catalog's figures. */
  version: string;
  /** Where the figures come from, so that a reader can re-check them. */
  source: string;
  currency: 'USD';
  unit: 'per 1M tokens';
  models: ModelPriceEntry[];
}

/** The price that applies to one model at one instant, in integer nano-USD per 1M tokens. */
export interface ResolvedPrice {
  provider: string;
  /** The catalog key that matched (one of the ref's price keys, or the dated key of an alias). */
  modelId: string;
  effectiveFrom: string;
  origin: 'bundled' | 'override';
  inputNanoPerMTok: bigint;
  outputNanoPerMTok: bigint;
  cacheReadNanoPerMTok: bigint;
  cacheWriteNanoPerMTok: bigint;
}

const NANO_PER_USD = 1_000_000_000n;
const MAX_PRICE_USD = 1_000_000n;
const DECIMAL = /^(\d+)(?:\.(\d+))?$/;
const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
/** A dated snapshot key: `claude-sonnet-4-5-20250929` → alias `claude-sonnet-4-5`. */
const DATED_KEY = /^(.+)-(\d{8})$/;

function invalid(field: string, reason: string): never {
  throw new TokenwatchError('invalid_argument', `${field}: ${reason}`, {
    details: [{ field, reason }],
  });
}

/**
 * Parses a non-negative decimal USD amount (a price per 1M tokens) into integer nano-USD:
 * `'3.30'` → `3_300_000_000n`. Accepts digits with an optional `.` and 1 to 9 decimals; rejects
 * empty strings, signs, exponents, spaces, more than 9 decimals and amounts above 1 000 000 USD,
 * with a `TokenwatchError` (`invalid_argument`) whose message and details name `field` and the
 * reason.
 */
export function parseDecimalUsd(value: string, field: string): bigint {
  if (typeof value !== 'string') invalid(field, 'must be a decimal string such as "3.30"');
  if (value === '') invalid(field, 'is empty');
  const shown = value.length > 40 ? `${value.slice(0, 40)}…` : value;
  const m = DECIMAL.exec(value);
  if (m === null) {
    if (value.startsWith('-')) invalid(field, `"${shown}" is negative`);
    if (/^[\d.]+e/i.test(value)) invalid(field, `"${shown}" uses exponent notation`);
    invalid(
      field,
      `"${shown}" is not a plain decimal number (digits, optionally "." and decimals)`,
    );
  }
  const whole = (m[1] ?? '').replace(/^0+(?=\d)/, '');
  const fraction = m[2] ?? '';
  if (fraction.length > 9) invalid(field, `"${shown}" has more than 9 decimals`);
  if (whole.length > 7) invalid(field, `"${shown}" is above ${MAX_PRICE_USD} USD`);
  const nano = BigInt(whole) * NANO_PER_USD + BigInt(fraction.padEnd(9, '0'));
  if (nano > MAX_PRICE_USD * NANO_PER_USD)
    invalid(field, `"${shown}" is above ${MAX_PRICE_USD} USD`);
  return nano;
}

/** Milliseconds of UTC midnight of a `YYYY-MM-DD` date, or `undefined` when it is no real date. */
function parseIsoDate(value: string): number | undefined {
  const m = typeof value === 'string' ? ISO_DATE.exec(value) : null;
  if (m === null) return undefined;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const ms = Date.UTC(y, mo - 1, d);
  const date = new Date(ms);
  const real =
    date.getUTCFullYear() === y && date.getUTCMonth() === mo - 1 && date.getUTCDate() === d;
  return real ? ms : undefined;
}

interface ParsedEntry {
  entry: ModelPriceEntry;
  fromMs: number;
  origin: 'bundled' | 'override';
  input: bigint;
  output: bigint;
  cacheRead: bigint;
  cacheWrite: bigint;
}

/** Every entry of one provider + key, each list sorted by `fromMs` ascending. */
interface KeySlot {
  bundled: ParsedEntry[];
  override: ParsedEntry[];
}

interface ProviderIndex {
  keys: Map<string, KeySlot>;
  /** Undated alias → the catalog key with the latest `-YYYYMMDD` date. */
  aliases: Map<string, string>;
}

function parseEntry(
  raw: ModelPriceEntry,
  path: string,
  origin: ParsedEntry['origin'],
): ParsedEntry {
  try {
    if (typeof raw !== 'object' || raw === null) invalid(path, 'must be an object');
    const provider = typeof raw.provider === 'string' ? normaliseProvider(raw.provider) : undefined;
    if (provider === undefined) invalid(`${path}.provider`, 'is empty');
    const modelId = typeof raw.modelId === 'string' ? raw.modelId.trim() : '';
    if (modelId === '') invalid(`${path}.modelId`, 'is empty');
    const fromMs = parseIsoDate(raw.effectiveFrom);
    if (fromMs === undefined) {
      invalid(`${path}.effectiveFrom`, `"${String(raw.effectiveFrom)}" is not a YYYY-MM-DD date`);
    }
    const input = parseDecimalUsd(raw.input, `${path}.input`);
    const output = parseDecimalUsd(raw.output, `${path}.output`);
    const entry: ModelPriceEntry = {
      provider,
      modelId,
      effectiveFrom: raw.effectiveFrom,
      input: raw.input,
      output: raw.output,
    };
    let cacheRead = input;
    let cacheWrite = input;
    if (raw.cacheRead !== undefined) {
      cacheRead = parseDecimalUsd(raw.cacheRead, `${path}.cacheRead`);
      entry.cacheRead = raw.cacheRead;
    }
    if (raw.cacheWrite !== undefined) {
      cacheWrite = parseDecimalUsd(raw.cacheWrite, `${path}.cacheWrite`);
      entry.cacheWrite = raw.cacheWrite;
    }
    return { entry, fromMs, origin, input, output, cacheRead, cacheWrite };
  } catch (error) {
    if (!(error instanceof TokenwatchError)) throw error;
    const what = origin === 'bundled' ? 'price catalog' : 'price override';
    throw new TokenwatchError('invalid_config', `${what}: ${error.message}`, {
      details: error.details,
      cause: error,
    });
  }
}

function identity(e: ParsedEntry): string {
  return `${e.entry.provider}\u0000${e.entry.modelId}\u0000${e.entry.effectiveFrom}`;
}

function rejectDuplicates(entries: readonly ParsedEntry[], what: string): void {
  const seen = new Set<string>();
  entries.forEach((e, i) => {
    const id = identity(e);
    if (seen.has(id)) {
      const field = `${what}[${i}]`;
      const { provider, modelId, effectiveFrom } = e.entry;
      const reason = `duplicate price for ${provider} ${modelId} from ${effectiveFrom}`;
      throw new TokenwatchError('invalid_config', `${field}: ${reason}`, {
        details: [{ field, reason }],
      });
    }
    seen.add(id);
  });
}

function buildIndex(entries: readonly ParsedEntry[]): Map<string, ProviderIndex> {
  const index = new Map<string, ProviderIndex>();
  for (const e of entries) {
    let p = index.get(e.entry.provider);
    if (p === undefined) {
      p = { keys: new Map(), aliases: new Map() };
      index.set(e.entry.provider, p);
    }
    let slot = p.keys.get(e.entry.modelId);
    if (slot === undefined) {
      slot = { bundled: [], override: [] };
      p.keys.set(e.entry.modelId, slot);
    }
    slot[e.origin].push(e);
  }
  for (const p of index.values()) {
    for (const [key, slot] of p.keys) {
      slot.bundled.sort((a, b) => a.fromMs - b.fromMs);
      slot.override.sort((a, b) => a.fromMs - b.fromMs);
      const dated = DATED_KEY.exec(key);
      const alias = dated?.[1];
      if (alias === undefined) continue;
      const current = p.aliases.get(alias);
      // Keys share the prefix, so the greatest key is the latest date.
      if (current === undefined || key > current) p.aliases.set(alias, key);
    }
  }
  return index;
}

/** Latest entry with `fromMs <= atMs`, or undefined. `list` is sorted ascending. */
function latestAt(list: readonly ParsedEntry[], atMs: number): ParsedEntry | undefined {
  for (let i = list.length - 1; i >= 0; i--) {
    const e = list[i];
    if (e !== undefined && e.fromMs <= atMs) return e;
  }
  return undefined;
}

function pick(slot: KeySlot, atMs: number): ParsedEntry | undefined {
  const applies = latestAt(slot.override, atMs) ?? latestAt(slot.bundled, atMs);
  if (applies !== undefined) return applies;
  const firstOverride = slot.override[0];
  const firstBundled = slot.bundled[0];
  if (firstOverride === undefined) return firstBundled;
  if (firstBundled === undefined) return firstOverride;
  return firstBundled.fromMs < firstOverride.fromMs ? firstBundled : firstOverride;
}

function resolve(e: ParsedEntry): ResolvedPrice {
  return {
    provider: e.entry.provider,
    modelId: e.entry.modelId,
    effectiveFrom: e.entry.effectiveFrom,
    origin: e.origin,
    inputNanoPerMTok: e.input,
    outputNanoPerMTok: e.output,
    cacheReadNanoPerMTok: e.cacheRead,
    cacheWriteNanoPerMTok: e.cacheWrite,
  };
}

function copyEntry(e: ModelPriceEntry): ModelPriceEntry {
  return { ...e };
}

/**
 * An immutable, dated price catalog: the bundled figures plus operator overrides.
 *
 * Lookup ({@link PriceCatalog.lookup}), deterministic:
 * 1. Entries are matched by `ref.provider` and then by key. Each of `ref.priceKeys` is tried in
 *    order, both as written and as `<provider>/<key>` (LiteLLM spells some keys that way, e.g.
 *    `deepseek/deepseek-chat`); the first key with any entry wins.
 * 2. Undated alias rule, only when no key matched: a key `K` matches the catalog key `K-YYYYMMDD`
 *    (exactly 8 digits) with the latest date, as Anthropic's undated aliases point to the newest
 *    snapshot (`claude-sonnet-4-5` → `claude-sonnet-4-5-20250929`). Keys again in order.
 * 3. Within the key, an override whose `effectiveFrom <= atMs` wins (the latest such); else the
 *    latest bundled entry with `effectiveFrom <= atMs`. When every entry starts after `atMs`, the
 *    earliest one is used: prices apply backwards to before the first known date (the bundled
 *    catalog has one date, the day its figures were taken, and events predate it).
 * Opaque refs (empty `priceKeys`) and models the catalog lacks give `undefined`: unpriced, not $0.
 *
 * Missing cache prices are charged at the input price: OpenAI bills cache writes at the input
 * rate, and without a figure the input rate is the only defensible guess. For Amazon Nova v1,
 * which LiteLLM lists without a cache-read price, this overstates cache reads (AWS discounts them);
 * add an override when that matters.
 */
export class PriceCatalog {
  readonly version: string;
  readonly source: string;
  private readonly bundled: readonly ParsedEntry[];
  private readonly overrides: readonly ParsedEntry[];
  private readonly index: Map<string, ProviderIndex>;

  private constructor(
    version: string,
    source: string,
    bundled: readonly ParsedEntry[],
    overrides: readonly ParsedEntry[],
  ) {
    this.version = version;
    this.source = source;
    this.bundled = bundled;
    this.overrides = overrides;
    this.index = buildIndex([...bundled, ...overrides]);
  }

  /**
   * Builds a catalog from data, validating every entry (decimal prices, real dates, no duplicate
   * provider + key + date). Throws a `TokenwatchError` `invalid_config` naming the entry and field.
   */
  static fromData(data: PriceCatalogData): PriceCatalog {
    if (data.currency !== 'USD' || data.unit !== 'per 1M tokens') {
      const reason = `unsupported currency/unit "${data.currency}" "${data.unit}"`;
      throw new TokenwatchError('invalid_config', `price catalog: ${reason}`, {
        details: [{ field: 'currency', reason }],
      });
    }
    if (!Array.isArray(data.models)) {
      const reason = 'models must be an array';
      throw new TokenwatchError('invalid_config', `price catalog: ${reason}`, {
        details: [{ field: 'models', reason }],
      });
    }
    const bundled = data.models.map((m, i) => parseEntry(m, `models[${i}]`, 'bundled'));
    rejectDuplicates(bundled, 'models');
    return new PriceCatalog(data.version, data.source, bundled, []);
  }

  /**
   * A new catalog with these overrides added. For the same provider + key an override that has
   * started (`effectiveFrom <= atMs`) beats every bundled entry; before its date the bundled
   * price still applies. To replace a bundled price for all time, date the override on or before
   * the bundled date. An override with the same provider + key + date as an earlier override
   * replaces it; duplicates within one call are rejected (`invalid_config`).
   */
  withOverrides(overrides: readonly ModelPriceEntry[]): PriceCatalog {
    const parsed = overrides.map((m, i) => parseEntry(m, `overrides[${i}]`, 'override'));
    rejectDuplicates(parsed, 'overrides');
    const replaced = new Set(parsed.map(identity));
    const kept = this.overrides.filter((e) => !replaced.has(identity(e)));
    return new PriceCatalog(this.version, this.source, this.bundled, [...kept, ...parsed]);
  }

  /**
   * The price for `ref` at `atMs` (epoch ms, the event time), or `undefined` when the model is
   * unpriced. See the class comment for the matching rules. A non-finite `atMs` is treated as
   * before every date.
   */
  lookup(ref: ModelRef, atMs: number): ResolvedPrice | undefined {
    const p = this.index.get(ref.provider);
    if (p === undefined || ref.priceKeys.length === 0) return undefined;
    const prefix = `${ref.provider}/`;
    for (const key of ref.priceKeys) {
      const slot = p.keys.get(key) ?? p.keys.get(prefix + key);
      if (slot !== undefined) return this.resolveSlot(slot, atMs);
    }
    for (const key of ref.priceKeys) {
      const dated = p.aliases.get(key) ?? p.aliases.get(prefix + key);
      const slot = dated === undefined ? undefined : p.keys.get(dated);
      if (slot !== undefined) return this.resolveSlot(slot, atMs);
    }
    return undefined;
  }

  /** Every entry, bundled first in data order, then overrides; copies. */
  list(): ModelPriceEntry[] {
    return [...this.bundled, ...this.overrides].map((e) => copyEntry(e.entry));
  }

  private resolveSlot(slot: KeySlot, atMs: number): ResolvedPrice | undefined {
    const e = pick(slot, Number.isFinite(atMs) ? atMs : Number.NEGATIVE_INFINITY);
    return e === undefined ? undefined : resolve(e);
  }
}
