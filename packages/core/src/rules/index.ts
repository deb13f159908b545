export * from './parse-rule.js';
export * from './rule.js';
export * from './windows.js';
