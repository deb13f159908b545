import { isBedrockArn, parseBedrockModelId, unique } from './bedrock-model-id.js';
import type { ModelRef } from './model-ref.js';
import { inferProvider, normaliseProvider, UNKNOWN_PROVIDER } from './provider.js';

/** OpenAI snapshot suffixes: `gpt-4o-2024-08-06`, older `gpt-4-0613`, `gpt-3.5-turbo-0125`. */
const OPENAI_SNAPSHOT = /-(?:\d{4}-\d{2}-\d{2}|\d{4})$/;
/** Anthropic snapshot / alias suffixes: `claude-sonnet-4-5-20250929`, `claude-3-5-haiku-latest`. */
const ANTHROPIC_SNAPSHOT = /-(?:\d{8}|latest)$/;

/**
 * Turns a provider and a raw model id, as an integration reported them, into the {@link ModelRef}
 * used for aggregation and pricing. Never throws: anything unrecognised becomes an unpriced
 * `model-id` (`opaque: false`, price keys that match nothing).
 *
 * Provider: trimmed, lower-cased, aliases folded (`aws.bedrock`, `amazon_bedrock`, `aws-bedrock`
 * → `bedrock`; see {@link normaliseProvider}); when absent or blank it is inferred from the id
 * ({@link inferProvider}), else `unknown`. A Bedrock ARN always yields `bedrock`, whatever the
 * caller said, because the ARN names its service.
 *
 * Model id: trimmed, otherwise case-sensitive. `modelId` is the id with nothing removed but the ARN
 * wrapper of a foundation-model / inference-profile ARN: geo prefixes, versions (`-v1:0`), context
 * suffixes (`:28k`) and dates are kept, so aggregates show what was actually called. Fallbacks go
 * into `priceKeys`, most specific first:
 * - Bedrock: geo-prefixed key, then the base id, each with and then without the context suffix;
 * - OpenAI: the id, then without a snapshot date (`gpt-4o-2024-08-06` → `gpt-4o`);
 * - Anthropic: the id, then without its date or `-latest` (`claude-sonnet-4-5-20250929` →
 *   `claude-sonnet-4-5`). The reverse direction, an undated alias finding a dated catalog key, is a
 *   rule of the catalog lookup (`PriceCatalog.lookup`);
 * - any provider: an id written `<provider>/<id>` (LiteLLM / router style) also tries `<id>`.
 */
export function normaliseModel(provider: string | undefined, rawModelId: string): ModelRef {
  const id = rawModelId.trim();
  if (isBedrockArn(id)) return parseBedrockModelId(id);

  const canonical = normaliseProvider(provider) ?? inferProvider(id) ?? UNKNOWN_PROVIDER;
  if (canonical === 'bedrock') return parseBedrockModelId(id);

  const prefix = `${canonical}/`;
  const bare = id.startsWith(prefix) ? id.slice(prefix.length) : id;
  const candidates = [id, bare];
  if (canonical === 'openai') candidates.push(bare.replace(OPENAI_SNAPSHOT, ''));
  if (canonical === 'anthropic') candidates.push(bare.replace(ANTHROPIC_SNAPSHOT, ''));

  return {
    provider: canonical,
    modelId: id,
    baseModelId: id,
    priceKeys: unique(candidates),
    kind: 'model-id',
    opaque: false,
  };
}
