export type { ModelKind, ModelRef } from './model-ref.js';
export { normaliseModel } from './normalise-model.js';
export { inferProvider, normaliseProvider, UNKNOWN_PROVIDER } from './provider.js';
