import type { ModelKind, ModelRef } from './model-ref.js';

/**
 * Cross-region inference-profile prefixes. LiteLLM's list (`global, us, eu, apac, jp, au, us-gov`)
 * plus `ca`, defensively.
 */
const GEO_PREFIXES: ReadonlySet<string> = new Set([
  'global',
  'us',
  'us-gov',
  'eu',
  'apac',
  'jp',
  'au',
  'ca',
]);

/** Model vendors on Bedrock: the first dot-separated segment of a base model id. */
const BEDROCK_VENDORS: ReadonlySet<string> = new Set([
  'anthropic',
  'amazon',
  'meta',
  'mistral',
  'cohere',
  'deepseek',
  'ai21',
  'openai',
  'qwen',
  'writer',
  'minimax',
  'moonshot',
  'moonshotai',
  'google',
  'nvidia',
  'twelvelabs',
  'stability',
]);

/** ARN resource types whose id is a readable model id (the ARN wrapper can be dropped). */
const TRANSPARENT_RESOURCES: ReadonlyMap<string, ModelKind> = new Map([
  ['foundation-model', 'foundation-model'],
  ['inference-profile', 'inference-profile'],
]);

/** ARN resource types that name something the id alone cannot price. */
const OPAQUE_RESOURCES: ReadonlyMap<string, ModelKind> = new Map([
  ['application-inference-profile', 'application-inference-profile'],
  ['provisioned-model', 'provisioned-model'],
  ['custom-model', 'custom-model'],
  ['custom-model-deployment', 'custom-model-deployment'],
  ['imported-model', 'imported-model'],
  ['prompt-router', 'prompt-router'],
  ['default-prompt-router', 'prompt-router'],
]);

/** Partitions: `aws`, `aws-us-gov`, `aws-cn`, `aws-iso`, `aws-iso-b`, … */
const BEDROCK_ARN_PREFIX = /^arn:aws(?:-[a-z]+)*:bedrock:/;
const BEDROCK_ARN = /^arn:aws(?:-[a-z]+)*:bedrock:([a-z0-9-]*):(\d*):([a-z-]+)\/(.+)$/s;
/** Bedrock context-window variant suffix: `anthropic.claude-3-haiku-20240307-v1:0:200k`. */
const CONTEXT_SUFFIX = /:\d+k$/;

/** True when the (trimmed) id is a Bedrock ARN in any partition. */
export function isBedrockArn(id: string): boolean {
  return BEDROCK_ARN_PREFIX.test(id);
}

/** True when the id starts with `<known Bedrock vendor>.` and has something after the dot. */
export function startsWithBedrockVendor(id: string): boolean {
  const dot = id.indexOf('.');
  return dot > 0 && dot < id.length - 1 && BEDROCK_VENDORS.has(id.slice(0, dot));
}

/**
 * Splits `<geo>.<vendor>.<model>` into the geo prefix and the base id. Returns `undefined` unless
 * the prefix is a known geo and the next segment a known vendor (so `us.foo` stays whole).
 */
export function splitGeoPrefix(id: string): { geo: string; rest: string } | undefined {
  const dot = id.indexOf('.');
  if (dot <= 0) return undefined;
  const geo = id.slice(0, dot);
  const rest = id.slice(dot + 1);
  if (!GEO_PREFIXES.has(geo) || !startsWithBedrockVendor(rest)) return undefined;
  return { geo, rest };
}

/**
 * Parses a Bedrock model id as a caller may send it (base id, geo profile id, foundation-model or
 * inference-profile ARN, opaque ARN) into a {@link ModelRef} with provider `bedrock`.
 *
 * - The ARN wrapper of foundation-model / inference-profile ARNs is dropped; the region is kept
 *   in `region`.
 * - The geo prefix stays in `modelId` (geo profiles of Claude 4.5+ cost 10 % more, `us-gov.` 20 %);
 *   `baseModelId` drops it and the context suffix.
 * - `priceKeys`: `<geo>.<id>`, `<geo>.<id without :NNk>`, `<id>`, `<id without :NNk>`,
 *   deduplicated.
 * - Any other Bedrock ARN is opaque: `modelId` is the whole ARN, `priceKeys` is empty. Unknown
 *   resource types get kind `model-id`.
 */
export function parseBedrockModelId(id: string): ModelRef {
  let rest = id;
  let kind: ModelKind = 'model-id';
  let region: string | undefined;
  if (isBedrockArn(id)) {
    const m = BEDROCK_ARN.exec(id);
    const resourceType = m?.[3] ?? '';
    const transparent = TRANSPARENT_RESOURCES.get(resourceType);
    if (m === null || transparent === undefined) {
      const ref: ModelRef = {
        provider: 'bedrock',
        modelId: id,
        baseModelId: id,
        priceKeys: [],
        kind: OPAQUE_RESOURCES.get(resourceType) ?? 'model-id',
        opaque: true,
      };
      if (m?.[1]) ref.region = m[1];
      return ref;
    }
    kind = transparent;
    region = m[1] || undefined;
    rest = m[4] ?? '';
  }

  const split = splitGeoPrefix(rest);
  const geo = split?.geo;
  const base = split?.rest ?? rest;
  if (geo !== undefined && kind === 'model-id') kind = 'inference-profile';
  const baseNoContext = base.replace(CONTEXT_SUFFIX, '');
  const candidates =
    geo === undefined
      ? [base, baseNoContext]
      : [`${geo}.${base}`, `${geo}.${baseNoContext}`, base, baseNoContext];

  const ref: ModelRef = {
    provider: 'bedrock',
    modelId: rest,
    baseModelId: baseNoContext,
    priceKeys: unique(candidates),
    kind,
    opaque: false,
  };
  if (geo !== undefined) ref.geo = geo;
  if (region !== undefined) ref.region = region;
  return ref;
}

/** Non-empty values in first-seen order. */
export function unique(values: readonly string[]): string[] {
  const out: string[] = [];
  for (const v of values) if (v !== '' && !out.includes(v)) out.push(v);
  return out;
}
