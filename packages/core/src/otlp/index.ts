export * from './genai-span.js';
export * from './genai-usage.js';
export * from './map-trace-request.js';
export * from './otlp-span.js';
