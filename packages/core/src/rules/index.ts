export * from './budget-check.js';
export * from './parse-rule.js';
export * from './rule.js';
export * from './rule-activation.js';
export * from './rule-engine.js';
export * from './windows.js';
