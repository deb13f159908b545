import { EVENT_LIMITS } from '../event/usage-event.js';
import type { OtlpAttributes, OtlpAttributeValue } from './otlp-span.js';

/**
 * Token usage of one span in tokenwatch's classes: `inputTokens` UNCACHED, cache reads and
 * writes apart, `outputTokens` including reasoning. `sources` names the attribute each number
 * came from, so a refusal can say which attribute was wrong.
 */
export interface SpanUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
  /** Which attribute family was read (see USAGE_FAMILIES). */
  family: string;
}

export type UsageReading =
  | { kind: 'none' }
  | { kind: 'usage'; usage: SpanUsage }
  | { kind: 'invalid'; field: string; reason: string };

/**
 * One naming scheme of token counts. `input` is the TOTAL input (cache reads and writes
 * included), as the current GenAI semconv says of `gen_ai.usage.input_tokens`; uncached input
 * is `input − cacheRead − cacheWrite`. `uncachedInput`, when the family has it, is read as is.
 * Within a family the first present name of each list wins.
 */
interface UsageFamily {
  name: string;
  input: readonly string[];
  uncachedInput?: readonly string[];
  /** Scopes whose `input` is uncached already (see INPUT_EXCLUDES_CACHE_SCOPES). */
  inputExcludesCacheFor?: ReadonlySet<string>;
  output: readonly string[];
  cacheRead: readonly string[];
  cacheWrite: readonly string[];
}

/**
 * Instrumentation scopes known to break the semconv rule: their `gen_ai.usage.input_tokens` is
 * the provider's UNCACHED input (Anthropic's `input_tokens`), the cache counts beside it. Seen
 * by recording @traceloop/instrumentation-anthropic 0.27.0 (otlp-fixtures/openllmetry.pb, and its
 * source: `ATTR_GEN_AI_USAGE_INPUT_TOKENS = result.usage.input_tokens`). Reading it the semconv
 * way would undercount input, or refuse it when the cache exceeds the uncached input.
 */
export const INPUT_EXCLUDES_CACHE_SCOPES: ReadonlySet<string> = new Set([
  '@traceloop/instrumentation-anthropic',
]);

const SEMCONV_CACHE_READ = [
  'gen_ai.usage.cache_read.input_tokens',
  // OpenLLMetry before the semconv name existed.
  'gen_ai.usage.cache_read_input_tokens',
];
const SEMCONV_CACHE_WRITE = [
  'gen_ai.usage.cache_creation.input_tokens',
  'gen_ai.usage.cache_creation_input_tokens',
];

/**
 * The families, in priority order: a span is read with the FIRST family that has an input or
 * output count on it, and numbers are never added across families (instrumentations set several
 * names for the same tokens: the AI SDK sets both `ai.usage.*` and `gen_ai.usage.*`).
 */
export const USAGE_FAMILIES: readonly UsageFamily[] = [
  {
    // Vercel AI SDK 6: exact classes, so they win over its `gen_ai.usage.input_tokens` total.
    name: 'ai-sdk-details',
    input: ['ai.usage.inputTokens'],
    uncachedInput: ['ai.usage.inputTokenDetails.noCacheTokens'],
    output: ['ai.usage.outputTokens'],
    cacheRead: ['ai.usage.inputTokenDetails.cacheReadTokens'],
    cacheWrite: ['ai.usage.inputTokenDetails.cacheWriteTokens'],
  },
  {
    name: 'gen_ai',
    input: ['gen_ai.usage.input_tokens'],
    inputExcludesCacheFor: INPUT_EXCLUDES_CACHE_SCOPES,
    output: ['gen_ai.usage.output_tokens'],
    cacheRead: SEMCONV_CACHE_READ,
    cacheWrite: SEMCONV_CACHE_WRITE,
  },
  {
    name: 'gen_ai-legacy',
    input: ['gen_ai.usage.prompt_tokens'],
    inputExcludesCacheFor: INPUT_EXCLUDES_CACHE_SCOPES,
    output: ['gen_ai.usage.completion_tokens'],
    cacheRead: SEMCONV_CACHE_READ,
    cacheWrite: SEMCONV_CACHE_WRITE,
  },
  {
    // OpenInference (Arize Phoenix): prompt_details are a breakdown of the prompt count.
    name: 'openinference',
    input: ['llm.token_count.prompt'],
    output: ['llm.token_count.completion'],
    cacheRead: ['llm.token_count.prompt_details.cache_read'],
    cacheWrite: ['llm.token_count.prompt_details.cache_write'],
  },
  {
    // OpenLLMetry / Traceloop before gen_ai.* (the `llm.usage.*` names).
    name: 'traceloop-legacy',
    input: ['llm.usage.prompt_tokens'],
    output: ['llm.usage.completion_tokens'],
    cacheRead: ['llm.usage.cache_read_input_tokens', ...SEMCONV_CACHE_READ],
    cacheWrite: ['llm.usage.cache_creation_input_tokens', ...SEMCONV_CACHE_WRITE],
  },
  {
    // Vercel AI SDK 4 (promptTokens) and 5 (inputTokens + cachedInputTokens).
    name: 'ai-sdk',
    input: ['ai.usage.inputTokens', 'ai.usage.promptTokens'],
    output: ['ai.usage.outputTokens', 'ai.usage.completionTokens'],
    cacheRead: ['ai.usage.cachedInputTokens'],
    cacheWrite: [],
  },
];

/** Totals without a split: usage we cannot class or price, refused with this reason. */
const TOTAL_ONLY = [
  'gen_ai.usage.total_tokens',
  'llm.usage.total_tokens',
  'llm.token_count.total',
  'ai.usage.totalTokens',
];

/** A count that is present but not a token count: the attribute and why. */
interface CountProblem {
  key: string;
  reason: string;
}

/**
 * `undefined`: none of the names is on the span; a number: the count; a `CountProblem`: the
 * first name present holds no valid count. A plain number, not an object per count: this is
 * read four times or more for every span.
 */
type CountReading = number | CountProblem | undefined;

const DIGITS = /^\d{1,16}$/;

function describe(value: OtlpAttributeValue): string {
  if (value === null) return 'an array, map or bytes value';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 32))}`;
  return `${value}`;
}

/**
 * Reads a token count: the value of the first of `keys` present on the span. OTLP `intValue`
 * arrives as a number or (JSON) a decimal string; an integral `doubleValue` and a digits-only
 * `stringValue` are accepted too, as instrumentations in dynamic languages send them.
 * Negative, fractional, huge or non-numeric values are problems.
 */
export function readCount(attributes: OtlpAttributes, keys: readonly string[]): CountReading {
  for (const key of keys) {
    // Attribute values are never `undefined` (OtlpAttributeValue): one lookup tells presence.
    const raw = attributes.get(key);
    if (raw === undefined) continue;
    let value: number | undefined;
    if (typeof raw === 'number') value = raw;
    else if (typeof raw === 'bigint') {
      return { key, reason: raw < 0n ? `must be >= 0, got ${raw}` : `is absurdly large (${raw})` };
    } else if (typeof raw === 'string' && DIGITS.test(raw.trim())) value = Number(raw.trim());
    if (value === undefined) {
      return { key, reason: `must be an integer token count, got ${describe(raw)}` };
    }
    if (!Number.isInteger(value)) return { key, reason: `must be an integer, got ${value}` };
    if (value < 0) return { key, reason: `must be >= 0, got ${value}` };
    if (value > EVENT_LIMITS.maxTokensPerField) {
      return { key, reason: `must be at most ${EVENT_LIMITS.maxTokensPerField}, got ${value}` };
    }
    return value === 0 ? 0 : value;
  }
  return undefined;
}

/** The first of `keys` present on the span: the one `readCount` read. */
function presentKey(attributes: OtlpAttributes, keys: readonly string[]): string | undefined {
  return keys.find((key) => attributes.get(key) !== undefined);
}

/** Whether the span carries any token count we know (of any family, totals included). */
export function hasUsageAttributes(attributes: OtlpAttributes): boolean {
  for (const family of USAGE_FAMILIES) {
    for (const key of family.input) if (attributes.has(key)) return true;
    for (const key of family.output) if (attributes.has(key)) return true;
  }
  for (const key of TOTAL_ONLY) if (attributes.has(key)) return true;
  return false;
}

function countOf(r: CountReading): number {
  return typeof r === 'number' ? r : 0;
}

function problemOf(r: CountReading): UsageReading | undefined {
  return typeof r === 'object' ? { kind: 'invalid', field: r.key, reason: r.reason } : undefined;
}

/**
 * Reads the span's usage with the first family present on it (see USAGE_FAMILIES) and turns it
 * into tokenwatch's classes: uncached input = input − cache read − cache write (except for the
 * scopes of INPUT_EXCLUDES_CACHE_SCOPES, whose input is uncached already).
 */
export function readSpanUsage(attributes: OtlpAttributes, scopeName = ''): UsageReading {
  for (const family of USAGE_FAMILIES) {
    const uncached = family.uncachedInput ? readCount(attributes, family.uncachedInput) : undefined;
    // A family with an uncached count is read only when that count is there.
    if (family.uncachedInput && uncached === undefined) continue;
    const input = readCount(attributes, family.input);
    const output = readCount(attributes, family.output);
    if (input === undefined && output === undefined && uncached === undefined) continue;
    const cacheRead = readCount(attributes, family.cacheRead);
    const cacheWrite = readCount(attributes, family.cacheWrite);
    const invalid =
      problemOf(uncached) ??
      problemOf(input) ??
      problemOf(output) ??
      problemOf(cacheRead) ??
      problemOf(cacheWrite);
    if (invalid) return invalid;
    const cr = countOf(cacheRead);
    const cw = countOf(cacheWrite);
    let inputTokens: number;
    if (uncached !== undefined) {
      inputTokens = countOf(uncached);
    } else if (family.inputExcludesCacheFor?.has(scopeName)) {
      inputTokens = countOf(input);
    } else {
      inputTokens = countOf(input) - cr - cw;
      if (inputTokens < 0) {
        const parts = [
          [family.cacheRead, cacheRead],
          [family.cacheWrite, cacheWrite],
        ] as const;
        const listed = parts
          .filter(([, r]) => r !== undefined)
          .map(([keys, r]) => `${presentKey(attributes, keys)} (${countOf(r)})`)
          .join(' + ');
        return {
          kind: 'invalid',
          field: presentKey(attributes, family.input) ?? (family.input[0] as string),
          reason: `(${countOf(input)}) is less than ${listed}; it must include cached input tokens, as the GenAI semantic conventions define it`,
        };
      }
    }
    return {
      kind: 'usage',
      usage: {
        inputTokens,
        outputTokens: countOf(output),
        cacheReadTokens: cr,
        cacheWriteTokens: cw,
        family: family.name,
      },
    };
  }
  for (const key of TOTAL_ONLY) {
    if (attributes.has(key)) {
      return {
        kind: 'invalid',
        field: key,
        reason:
          'is a total without the input/output split; tokenwatch needs input and output counts to class and price the call',
      };
    }
  }
  return { kind: 'none' };
}
