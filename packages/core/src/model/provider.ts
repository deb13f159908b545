import { isBedrockArn, splitGeoPrefix, startsWithBedrockVendor } from './bedrock-model-id.js';

/**
 * Provider spellings seen in the wild, mapped to the canonical id. Sources: OTel
 * `gen_ai.provider.name` (`aws.bedrock`), LangChain `ls_provider` (`amazon_bedrock`), the AI SDK
 * `model.provider` (`amazon-bedrock`, `openai.chat`, `openai.responses`, `anthropic.messages`) and
 * LiteLLM (`bedrock_converse`). Azure OpenAI is deliberately not folded into `openai`: its prices
 * and deployments differ.
 */
const PROVIDER_ALIASES: ReadonlyMap<string, string> = new Map([
  ['bedrock', 'bedrock'],
  ['aws.bedrock', 'bedrock'],
  ['aws-bedrock', 'bedrock'],
  ['aws_bedrock', 'bedrock'],
  ['amazon_bedrock', 'bedrock'],
  ['amazon-bedrock', 'bedrock'],
  ['amazon.bedrock', 'bedrock'],
  ['bedrock_converse', 'bedrock'],
  ['openai', 'openai'],
  ['openai.chat', 'openai'],
  ['openai.responses', 'openai'],
  ['openai.completion', 'openai'],
  ['anthropic', 'anthropic'],
  ['anthropic.messages', 'anthropic'],
]);

/** Provider used when none is given and none can be inferred from the model id. */
export const UNKNOWN_PROVIDER = 'unknown';

/**
 * Canonical provider id: trimmed, lower-cased, known aliases folded (`aws.bedrock` → `bedrock`).
 * Returns `undefined` for `undefined` or a blank string, so the caller can infer it instead.
 */
export function normaliseProvider(provider: string | undefined): string | undefined {
  if (provider === undefined) return undefined;
  const p = provider.trim().toLowerCase();
  if (p === '') return undefined;
  return PROVIDER_ALIASES.get(p) ?? p;
}

const OPENAI_ID = /^(?:gpt-|chatgpt-|text-embedding-|o[134](?:$|-))/;

/**
 * Best guess of the provider from the model id alone (case-sensitive, trimmed):
 * - `bedrock` for Bedrock ARNs, geo-prefixed profile ids (`us.anthropic.…`) and `vendor.model`
 *   ids whose vendor is a known Bedrock vendor (`anthropic.`, `amazon.`, `meta.`, `deepseek.`, …);
 * - `openai` for `gpt-*`, `o1` / `o3` / `o4` (and their `-mini`, dated … variants), `chatgpt-*`,
 *   `text-embedding-*`;
 * - `anthropic` for `claude-*`;
 * - `deepseek` for `deepseek-*` (DeepSeek's own API: `deepseek-chat`, `deepseek-reasoner`);
 * - `undefined` otherwise.
 */
export function inferProvider(modelId: string): string | undefined {
  const id = modelId.trim();
  if (isBedrockArn(id)) return 'bedrock';
  if (splitGeoPrefix(id) !== undefined || startsWithBedrockVendor(id)) return 'bedrock';
  if (OPENAI_ID.test(id)) return 'openai';
  if (id.startsWith('claude-')) return 'anthropic';
  if (id.startsWith('deepseek-')) return 'deepseek';
  return undefined;
}
