import type { OtlpAttributes } from './otlp-span.js';

/** Model attributes, first present non-empty string wins: the model that answered first. */
export const MODEL_ATTRIBUTES: readonly string[] = [
  'gen_ai.response.model',
  'gen_ai.request.model',
  'llm.response.model',
  'llm.request.model',
  'ai.response.model',
  'ai.model.id',
  'llm.model_name',
];

/** Provider attributes (current semconv, its deprecated name, then vendor names). */
export const PROVIDER_ATTRIBUTES: readonly string[] = [
  'gen_ai.provider.name',
  'gen_ai.system',
  'ai.model.provider',
  'llm.provider',
  'llm.system',
];

/** `gen_ai.operation.name` values of spans that aggregate calls made below them. */
const AGGREGATE_OPERATIONS: ReadonlySet<string> = new Set([
  'invoke_agent',
  'create_agent',
  'execute_tool',
  'invoke_workflow',
]);

/** The AI SDK's provider-call spans (`ai.generateText.doGenerate`, `ai.embed.doEmbed`, …). */
const AI_SDK_CALL = /\.do(Generate|Stream|Embed)$/;
const OPENINFERENCE_CALL_KINDS: ReadonlySet<string> = new Set(['LLM', 'EMBEDDING']);
const TRACELOOP_WRAPPER_KINDS: ReadonlySet<string> = new Set(['workflow', 'task', 'agent', 'tool']);
const LANGSMITH_CALL_KINDS: ReadonlySet<string> = new Set(['llm', 'embedding']);

/** The first present non-blank string among `keys`, with the key it came from. */
export function firstString(
  attributes: OtlpAttributes,
  keys: readonly string[],
): { key: string; value: string } | undefined {
  for (const key of keys) {
    const value = attributes.get(key);
    if (typeof value === 'string' && value.trim() !== '') return { key, value };
  }
  return undefined;
}

/**
 * Why a span that carries token counts is a wrapper around the calls below it, judged from its
 * own attributes only (so it holds even when its children were exported in another request):
 * an agent/workflow/tool operation, an AI SDK root span (`ai.generateText`, not `….doGenerate`),
 * an OpenInference span whose kind is not LLM/EMBEDDING, a Traceloop workflow/task/agent/tool
 * span, a LangSmith span whose kind is not llm/embedding. `undefined`: it is a model call.
 */
export function wrapperMarker(attributes: OtlpAttributes): string | undefined {
  const operation = attributes.get('gen_ai.operation.name');
  if (typeof operation === 'string' && AGGREGATE_OPERATIONS.has(operation)) {
    return `gen_ai.operation.name is "${operation}"`;
  }
  const aiOperation = attributes.get('ai.operationId');
  if (typeof aiOperation === 'string' && !AI_SDK_CALL.test(aiOperation)) {
    return `ai.operationId is "${aiOperation}" (the AI SDK counts calls on its .doGenerate/.doStream/.doEmbed spans)`;
  }
  const openInference = attributes.get('openinference.span.kind');
  if (
    typeof openInference === 'string' &&
    !OPENINFERENCE_CALL_KINDS.has(openInference.toUpperCase())
  ) {
    return `openinference.span.kind is "${openInference}"`;
  }
  const traceloop = attributes.get('traceloop.span.kind');
  if (typeof traceloop === 'string' && TRACELOOP_WRAPPER_KINDS.has(traceloop.toLowerCase())) {
    return `traceloop.span.kind is "${traceloop}"`;
  }
  const langsmith = attributes.get('langsmith.span.kind');
  if (typeof langsmith === 'string' && !LANGSMITH_CALL_KINDS.has(langsmith.toLowerCase())) {
    return `langsmith.span.kind is "${langsmith}"`;
  }
  return undefined;
}
