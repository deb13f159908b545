type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const TOP_LEVEL = [
  'schemaType',
  'schemaVersion',
  'timestamp',
  'accountId',
  'identity',
  'region',
  'inferenceRegion',
  'requestId',
  'operation',
  'modelId',
  'errorCode',
  'requestMetadata',
] as const;
const INPUT = ['inputTokenCount', 'cacheReadInputTokenCount', 'cacheWriteInputTokenCount'] as const;

/**
 * The part of an invocation-log record that `readInvocationLogRecord` reads: prompts and
 * completions (`inputBodyJson`, `outputBodyJson`) are dropped, except the response's `usage` and
 * `metrics`. What the CLI sends to a server: smaller, and no prompt ever leaves the machine.
 * Anything that is not a record object is returned as is, for the reader to refuse.
 */
export function slimInvocationLogRecord(raw: unknown): unknown {
  if (!isObject(raw)) return raw;
  const out: Json = {};
  for (const key of TOP_LEVEL) if (raw[key] !== undefined) out[key] = raw[key];
  if (isObject(raw.input)) {
    const input: Json = {};
    for (const key of INPUT) if (raw.input[key] !== undefined) input[key] = raw.input[key];
    out.input = input;
  }
  if (isObject(raw.output)) {
    const output: Json = {};
    if (raw.output.outputTokenCount !== undefined)
      output.outputTokenCount = raw.output.outputTokenCount;
    const body = raw.output.outputBodyJson;
    if (isObject(body) && (body.usage !== undefined || body.metrics !== undefined)) {
      const slimBody: Json = {};
      if (body.usage !== undefined) slimBody.usage = body.usage;
      if (body.metrics !== undefined) slimBody.metrics = body.metrics;
      output.outputBodyJson = slimBody;
    }
    out.output = output;
  }
  return out;
}
