/**
 * What a model id names. `model-id` is a plain id (`gpt-4o`, `anthropic.claude-3-haiku-…-v1:0`);
 * the others are the Bedrock ARN resource types (a geo-prefixed id without an ARN is an
 * `inference-profile` too).
 */
export type ModelKind =
  | 'model-id'
  | 'foundation-model'
  | 'inference-profile'
  | 'application-inference-profile'
  | 'provisioned-model'
  | 'custom-model'
  | 'imported-model'
  | 'prompt-router'
  | 'custom-model-deployment';

/** A model id as the collector understands it: what to aggregate on and how to look up a price. */
export interface ModelRef {
  /** Lower-case provider: `bedrock`, `openai`, `anthropic`, another id as given, or `unknown`. */
  provider: string;
  /**
   * Canonical id stored in aggregates. Only the Bedrock ARN wrapper of a foundation-model or
   * inference-profile ARN is removed; the geo prefix (it changes the price), version and context
   * suffixes are kept. Opaque ARNs are kept whole.
   */
  modelId: string;
  /** `modelId` without geo prefix and Bedrock context suffix (`:28k`); else equals `modelId`. */
  baseModelId: string;
  /** Candidate price-catalog keys, most specific first, no duplicates; `[]` when opaque. */
  priceKeys: string[];
  kind: ModelKind;
  /** Cross-region inference-profile prefix: us, eu, apac, global, jp, au, us-gov, ca. */
  geo?: string;
  /** AWS region taken from an ARN. */
  region?: string;
  /**
   * True for ARNs whose model and price cannot be read from the id (application inference
   * profiles, provisioned throughput, custom / imported models, prompt routers): they are
   * counted, never priced per token, until resolved to a base model through the control plane.
   */
  opaque: boolean;
}
