// Records the OTLP trace exports of real GenAI instrumentations as test fixtures (../*.pb).
//
// Each scenario runs a real client library, instrumented by a real instrumentation, exporting with
// the real OTLP/HTTP protobuf exporter to a loopback receiver that keeps the bodies as sent. Only
// the LLM provider is a loopback stub: it answers with the usage in PROVIDER_USAGE, the truth the
// tests hold tokenwatch's stored token classes to (../README.md). Run: npm install && node record.mjs
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { fileURLToPath } from 'node:url';
import { createAnthropic } from '@ai-sdk/anthropic';
import { createOpenAI } from '@ai-sdk/openai';
import Anthropic from '@anthropic-ai/sdk';
import { OpenAIInstrumentation as OpenInferenceOpenAI } from '@arizeai/openinference-instrumentation-openai';
import { context } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BatchSpanProcessor, NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { AnthropicInstrumentation } from '@traceloop/instrumentation-anthropic';
import { OpenAIInstrumentation as TraceloopOpenAI } from '@traceloop/instrumentation-openai';
import { generateText, streamText } from 'ai';
import OpenAI from 'openai';

const OUT_DIR = fileURLToPath(new URL('../', import.meta.url));

/** What the stub provider answers: the ground truth of every fixture. */
export const PROVIDER_USAGE = {
  anthropic: {
    model: 'claude-sonnet-4-5-20250929',
    // Anthropic's input_tokens are UNCACHED; cache reads and writes are apart.
    usage: {
      input_tokens: 10,
      cache_creation_input_tokens: 200,
      cache_read_input_tokens: 1800,
      output_tokens: 60,
    },
  },
  openai: {
    model: 'gpt-4o-mini-2024-07-18',
    // OpenAI's prompt_tokens INCLUDE the cached ones.
    usage: {
      prompt_tokens: 1500,
      completion_tokens: 40,
      total_tokens: 1540,
      prompt_tokens_details: { cached_tokens: 1024 },
    },
  },
};

function stubProvider() {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      const request = body ? JSON.parse(body) : {};
      res.setHeader('content-type', 'application/json');
      if (req.url?.endsWith('/messages')) {
        const { model, usage } = PROVIDER_USAGE.anthropic;
        res.end(
          JSON.stringify({
            id: 'msg_01',
            type: 'message',
            role: 'assistant',
            model,
            content: [{ type: 'text', text: 'Hello.' }],
            stop_reason: 'end_turn',
            stop_sequence: null,
            usage,
          }),
        );
        return;
      }
      if (req.url?.endsWith('/chat/completions')) {
        const { model, usage } = PROVIDER_USAGE.openai;
        if (request.stream) {
          res.setHeader('content-type', 'text/event-stream');
          const chunk = (delta, extra = {}) =>
            `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1767225600, model, choices: delta ? [{ index: 0, delta, finish_reason: null }] : [], ...extra })}\n\n`;
          res.write(chunk({ role: 'assistant', content: 'Hel' }));
          res.write(chunk({ content: 'lo.' }));
          res.write(
            `data: ${JSON.stringify({ id: 'chatcmpl-1', object: 'chat.completion.chunk', created: 1767225600, model, choices: [{ index: 0, delta: {}, finish_reason: 'stop' }] })}\n\n`,
          );
          res.write(chunk(undefined, { usage }));
          res.end('data: [DONE]\n\n');
          return;
        }
        res.end(
          JSON.stringify({
            id: 'chatcmpl-1',
            object: 'chat.completion',
            created: 1767225600,
            model,
            choices: [
              {
                index: 0,
                message: { role: 'assistant', content: 'Hello.' },
                finish_reason: 'stop',
              },
            ],
            usage,
          }),
        );
        return;
      }
      res.statusCode = 404;
      res.end('{}');
    });
  });
  return server;
}

function otlpRecorder(bodies) {
  return createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      bodies.push(Buffer.concat(chunks));
      res.setHeader('content-type', 'application/x-protobuf');
      res.end(); // an empty ExportTraceServiceResponse
    });
  });
}

async function listen(server) {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${server.address().port}`;
}

/** Runs one scenario with its own tracer provider and returns the export bodies it produced. */
async function record(name, serviceName, run) {
  const bodies = [];
  const receiver = otlpRecorder(bodies);
  const url = await listen(receiver);
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': serviceName }),
    spanProcessors: [
      new BatchSpanProcessor(new OTLPTraceExporter({ url: `${url}/v1/traces` }), {
        scheduledDelayMillis: 60_000,
      }),
    ],
  });
  await run(provider);
  await provider.forceFlush();
  await provider.shutdown();
  receiver.close();
  if (bodies.length !== 1) throw new Error(`${name}: expected one export, got ${bodies.length}`);
  const file = `${OUT_DIR}${name}.pb`;
  writeFileSync(file, bodies[0]);
  console.log(`recorded ${file} (${bodies[0].length} bytes)`);
}

const contextManager = new AsyncLocalStorageContextManager();
contextManager.enable();
context.setGlobalContextManager(contextManager);

const stub = stubProvider();
const stubUrl = await listen(stub);

// 1. Vercel AI SDK 6 telemetry (experimental_telemetry): Anthropic with prompt caching, then
//    OpenAI chat streaming. Root spans ai.generateText / ai.streamText wrap the provider calls.
await record('ai-sdk-6', 'support-bot', async (provider) => {
  const tracer = provider.getTracer('ai');
  const anthropic = createAnthropic({ baseURL: `${stubUrl}/v1`, apiKey: 'stub' });
  const openai = createOpenAI({ baseURL: `${stubUrl}/v1`, apiKey: 'stub' });
  await generateText({
    model: anthropic('claude-sonnet-4-5'),
    prompt: 'Say hello.',
    experimental_telemetry: {
      isEnabled: true,
      functionId: 'greet',
      metadata: { userId: 'user-ai-sdk', team: 'support' },
      tracer,
    },
  });
  const stream = streamText({
    model: openai.chat('gpt-4o-mini'),
    prompt: 'Say hello.',
    experimental_telemetry: {
      isEnabled: true,
      functionId: 'greet-stream',
      metadata: { userId: 'user-ai-sdk' },
      tracer,
    },
  });
  await stream.consumeStream();
});

// 2. OpenLLMetry (Traceloop) instrumentations of the Anthropic (prompt caching) and OpenAI SDKs.
await record('openllmetry', 'billing-api', async (provider) => {
  const anthropicInstrumentation = new AnthropicInstrumentation();
  anthropicInstrumentation.setTracerProvider(provider);
  anthropicInstrumentation.manuallyInstrument({ Anthropic });
  const openaiInstrumentation = new TraceloopOpenAI();
  openaiInstrumentation.setTracerProvider(provider);
  openaiInstrumentation.manuallyInstrument(OpenAI);
  const anthropic = new Anthropic({ baseURL: stubUrl, apiKey: 'stub' });
  await anthropic.messages.create({
    model: 'claude-sonnet-4-5',
    max_tokens: 100,
    messages: [{ role: 'user', content: 'Say hello.' }],
  });
  const openai = new OpenAI({ baseURL: `${stubUrl}/v1`, apiKey: 'stub' });
  await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello.' }],
  });
});

// 3. OpenInference (Arize) instrumentation of the OpenAI SDK.
await record('openinference', 'search-api', async (provider) => {
  const instrumentation = new OpenInferenceOpenAI({ tracerProvider: provider });
  instrumentation.setTracerProvider(provider);
  const OpenAIClass = (await import('openai')).default;
  instrumentation.manuallyInstrument({ OpenAI: OpenAIClass, default: OpenAIClass });
  const openai = new OpenAIClass({ baseURL: `${stubUrl}/v1`, apiKey: 'stub' });
  await openai.chat.completions.create({
    model: 'gpt-4o-mini',
    messages: [{ role: 'user', content: 'Say hello.' }],
  });
});

stub.close();
writeFileSync(`${OUT_DIR}provider-usage.json`, `${JSON.stringify(PROVIDER_USAGE, null, 2)}\n`);
