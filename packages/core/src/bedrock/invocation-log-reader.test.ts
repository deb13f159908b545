import { describe, expect, it } from 'vitest';
import applicationProfile from './fixtures/application-inference-profile.json' with {
  type: 'json',
};
import converseMetadata from './fixtures/converse-haiku-metadata.json' with { type: 'json' };
import converseStream from './fixtures/converse-stream-nova.json' with { type: 'json' };
import errorThrottled from './fixtures/error-throttled.json' with { type: 'json' };
import invokeCache from './fixtures/invoke-model-claude-cache.json' with { type: 'json' };
import invokeHeaderMetadata from './fixtures/invoke-model-llama-header-metadata.json' with {
  type: 'json',
};
import invokeStream from './fixtures/invoke-model-stream-titan.json' with { type: 'json' };
import {
  createInvocationLogReader,
  DEFAULT_INVOCATION_LOG_MAPPING,
  type InvocationLogMapping,
  readInvocationLogRecord,
} from './invocation-log-reader.js';

const read = (raw: unknown, mapping: Partial<InvocationLogMapping> = {}) =>
  readInvocationLogRecord(raw, { ...DEFAULT_INVOCATION_LOG_MAPPING, ...mapping });

const clone = <T>(v: T): T => structuredClone(v);

describe('readInvocationLogRecord: recorded and real-shaped records', () => {
  it('ConverseStream (recorded): IAM user as user and app, counts from the log', () => {
    expect(read(converseStream)).toEqual({
      ok: true,
      requestId: 'ff4b6c63-5561-4431-93b8-06a817275900',
      operation: 'ConverseStream',
      event: {
        id: 'bedrock:ff4b6c63-5561-4431-93b8-06a817275900',
        timestamp: Date.parse('2025-03-11T00:38:02Z'),
        userId: 'dana',
        appId: 'dana',
        modelId: 'amazon.nova-lite-v1:0',
        provider: 'bedrock',
        inputTokens: 4,
        outputTokens: 38,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        status: 'ok',
        latencyMs: 302,
      },
    });
  });

  it('Converse with requestMetadata: user and app from the metadata, chosen keys as tags', () => {
    const result = read(converseMetadata, { tagMetadataKeys: ['team', 'absent'] });
    expect(result).toEqual({
      ok: true,
      requestId: '915a6a04-3f83-4c70-a277-7fbf7ea546b3',
      operation: 'Converse',
      event: {
        id: 'bedrock:915a6a04-3f83-4c70-a277-7fbf7ea546b3',
        timestamp: Date.parse('2025-04-09T23:00:17Z'),
        userId: 'alice',
        appId: 'support-bot',
        modelId: 'anthropic.claude-3-haiku-20240307-v1:0',
        provider: 'bedrock',
        inputTokens: 35,
        outputTokens: 446,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        status: 'ok',
        latencyMs: 3640,
        tags: { team: 'care' },
      },
    });
  });

  it('Converse without metadata keys: assumed role is the app, its session the user', () => {
    const raw = clone(converseMetadata) as Record<string, unknown>;
    delete raw.requestMetadata;
    const result = read(raw);
    expect(result.ok && result.event.appId).toBe('support-bot-task-role');
    expect(result.ok && result.event.userId).toBe('4f1c0a9e2b7d4c1fa3d2e6b8c9a0f1e2');
    expect(result.ok && result.event.tags).toBeUndefined();
  });

  it('InvokeModel on a cross-region profile ARN with cache reads and writes', () => {
    expect(read(invokeCache)).toEqual({
      ok: true,
      requestId: '0c7a9f1e-6d2b-4e8a-9b3c-5f1d2e3a4b5c',
      operation: 'InvokeModel',
      event: {
        id: 'bedrock:0c7a9f1e-6d2b-4e8a-9b3c-5f1d2e3a4b5c',
        timestamp: Date.parse('2025-08-15T13:17:13Z'),
        userId: 'i-0a1b2c3d4e5f60718',
        appId: 'rag-worker',
        modelId:
          'arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0',
        provider: 'bedrock',
        inputTokens: 1200,
        outputTokens: 300,
        cacheReadTokens: 2048,
        cacheWriteTokens: 512,
        status: 'ok',
      },
    });
  });

  it('InvokeModelWithResponseStream (Titan, chunk array body)', () => {
    expect(read(invokeStream)).toEqual({
      ok: true,
      requestId: '7d6c5b4a-3e2f-4a1b-8c9d-0e1f2a3b4c5d',
      operation: 'InvokeModelWithResponseStream',
      event: {
        id: 'bedrock:7d6c5b4a-3e2f-4a1b-8c9d-0e1f2a3b4c5d',
        timestamp: Date.parse('2024-11-02T09:12:45Z'),
        userId: 'chalice-api-dev',
        appId: 'chalice-api-dev',
        modelId: 'amazon.titan-text-express-v1',
        provider: 'bedrock',
        inputTokens: 7,
        outputTokens: 11,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        status: 'ok',
      },
    });
  });

  it('InvokeModel with header request metadata but no user key: identity fills in', () => {
    const result = read(invokeHeaderMetadata, { tagMetadataKeys: ['team', 'environment'] });
    expect(result).toMatchObject({
      ok: true,
      event: {
        userId: 'eval-runner',
        appId: 'batch-eval',
        inputTokens: 15,
        outputTokens: 12,
        tags: { team: 'orchestrator', environment: 'preview-test' },
      },
    });
  });

  it('application inference profile ARN is kept as logged (priced through an override)', () => {
    const result = read(applicationProfile);
    expect(result).toMatchObject({
      ok: true,
      event: {
        id: 'bedrock:abc12345-0000-4000-8000-00000000c0de',
        modelId: 'arn:aws:bedrock:us-east-1:466959819186:application-inference-profile/x1y2z3abcd',
        inputTokens: 512,
        outputTokens: 256,
        appId: 'claims-service',
        userId: 'claims-7f3a',
      },
    });
  });

  it('error record: a status "error" event with zero tokens, or skipped when excluded', () => {
    expect(read(errorThrottled)).toEqual({
      ok: true,
      requestId: '3f0e9d8c-7b6a-4594-8372-6150f4e3d2c1',
      operation: 'ConverseStream',
      event: {
        id: 'bedrock:3f0e9d8c-7b6a-4594-8372-6150f4e3d2c1',
        timestamp: Date.parse('2025-09-01T08:30:59Z'),
        userId: 'bob',
        appId: 'support-bot-task-role',
        modelId: 'eu.anthropic.claude-3-7-sonnet-20250219-v1:0',
        provider: 'bedrock',
        inputTokens: 0,
        outputTokens: 0,
        cacheReadTokens: 0,
        cacheWriteTokens: 0,
        status: 'error',
      },
    });
    expect(read(errorThrottled, { includeErrors: false })).toMatchObject({
      ok: false,
      reason: 'error_record_excluded',
      requestId: '3f0e9d8c-7b6a-4594-8372-6150f4e3d2c1',
    });
  });
});

describe('readInvocationLogRecord: mapping rules', () => {
  it('principal table: a role ARN matches its sessions; first row wins; metadata still wins', () => {
    const reader = createInvocationLogReader({
      ...DEFAULT_INVOCATION_LOG_MAPPING,
      principals: [
        { arn: 'arn:aws:iam::123456789012:role/rag-worker', appId: 'rag', userId: 'rag-batch' },
        { arn: 'arn:aws:sts::123456789012:assumed-role/*', appId: 'other' },
      ],
    });
    expect(reader(invokeCache)).toMatchObject({ event: { appId: 'rag', userId: 'rag-batch' } });
    const other = reader(errorThrottled);
    // requestMetadata names bob; the table names the app.
    expect(other).toMatchObject({ event: { appId: 'other', userId: 'bob' } });
  });

  it('identity parts are configurable, and defaults apply without identity', () => {
    const raw = clone(invokeCache) as Record<string, unknown>;
    expect(read(raw, { userFromIdentity: 'arn', appFromIdentity: 'none' })).toMatchObject({
      event: {
        userId: 'arn:aws:sts::123456789012:assumed-role/rag-worker/i-0a1b2c3d4e5f60718',
        appId: 'bedrock',
      },
    });
    delete raw.identity;
    expect(read(raw)).toMatchObject({ event: { userId: 'unknown', appId: 'bedrock' } });
  });

  it('usage falls back on the response body when the log has no counts', () => {
    const converse = clone(converseStream) as {
      input: Record<string, unknown>;
      output: Record<string, unknown>;
    };
    delete converse.input.inputTokenCount;
    delete converse.output.outputTokenCount;
    expect(read(converse)).toMatchObject({ event: { inputTokens: 4, outputTokens: 38 } });
    const anthropic = clone(invokeCache) as typeof converse;
    for (const k of ['inputTokenCount', 'cacheReadInputTokenCount', 'cacheWriteInputTokenCount'])
      delete anthropic.input[k];
    delete anthropic.output.outputTokenCount;
    expect(read(anthropic)).toMatchObject({
      event: { inputTokens: 1200, outputTokens: 300, cacheReadTokens: 2048, cacheWriteTokens: 512 },
    });
  });
});

describe('readInvocationLogRecord: bad input is skipped with a reason, never thrown', () => {
  const cases: Array<[string, unknown, string]> = [
    ['non-log JSON', { hello: 'world' }, 'not_invocation_log'],
    ['another schema', { ...converseStream, schemaType: 'CloudTrailEvent' }, 'not_invocation_log'],
    ['an array', [converseStream], 'not_invocation_log'],
    ['null', null, 'not_invocation_log'],
    [
      'unknown schema version',
      { ...converseStream, schemaVersion: '2.0' },
      'unknown_schema_version',
    ],
    ['no request id', { ...converseStream, requestId: undefined }, 'missing_request_id'],
    ['bad request id', { ...converseStream, requestId: 'a b\nc' }, 'missing_request_id'],
    [
      'timestamp without zone',
      { ...converseStream, timestamp: '2025-03-11T00:38:02' },
      'invalid_timestamp',
    ],
    ['no model', { ...converseStream, modelId: '' }, 'missing_model_id'],
    [
      'no token counts',
      { ...converseStream, input: { inputContentType: 'application/json' }, output: {} },
      'missing_token_counts',
    ],
    [
      'negative count',
      { ...converseStream, input: { inputTokenCount: -3 }, output: { outputTokenCount: 1 } },
      'invalid_token_count',
    ],
    [
      'fractional count',
      { ...converseStream, input: { inputTokenCount: 1.5 }, output: { outputTokenCount: 1 } },
      'invalid_token_count',
    ],
    [
      'absurd count',
      { ...converseStream, input: { inputTokenCount: 4 }, output: { outputTokenCount: 9e15 } },
      'absurd_token_count',
    ],
  ];
  for (const [name, raw, reason] of cases) {
    it(name, () => {
      const result = read(raw);
      expect(result.ok).toBe(false);
      if (!result.ok) {
        expect(result.reason).toBe(reason);
        expect(result.detail.length).toBeGreaterThan(0);
      }
    });
  }

  it('string and float-formatted counts (as some shippers write them) are read exactly', () => {
    const raw = {
      ...converseStream,
      input: { inputTokenCount: '4' },
      output: { outputTokenCount: 38.0 },
    };
    expect(read(raw)).toMatchObject({ ok: true, event: { inputTokens: 4, outputTokens: 38 } });
  });

  it('a record with no schemaVersion or schemaType but the log shape is read', () => {
    const raw = clone(converseStream) as Record<string, unknown>;
    delete raw.schemaType;
    delete raw.schemaVersion;
    expect(read(raw).ok).toBe(true);
  });
});

describe('slimInvocationLogRecord', () => {
  it('drops prompts and completions and reads to exactly the same event', async () => {
    const { slimInvocationLogRecord } = await import('./slim-record.js');
    for (const fixture of [
      converseStream,
      converseMetadata,
      invokeCache,
      invokeStream,
      invokeHeaderMetadata,
      applicationProfile,
      errorThrottled,
    ]) {
      const slim = slimInvocationLogRecord(fixture);
      const text = JSON.stringify(slim);
      expect(text).not.toMatch(/inputBodyJson|"text"|outputText|generation"/);
      expect(read(slim)).toEqual(read(fixture));
    }
    const anthropic = clone(invokeCache) as {
      input: Record<string, unknown>;
      output: Record<string, unknown>;
    };
    delete anthropic.output.outputTokenCount;
    delete anthropic.input.inputTokenCount;
    expect(read(slimInvocationLogRecord(anthropic))).toEqual(read(anthropic));
    expect(slimInvocationLogRecord('x')).toBe('x');
  });
});
