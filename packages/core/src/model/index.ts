export type { ModelKind, ModelRef } from './model-ref.js';
export { ModelRefCache } from './model-ref-cache.js';
export { normaliseModel } from './normalise-model.js';
export { inferProvider, normaliseProvider, UNKNOWN_PROVIDER } from './provider.js';
