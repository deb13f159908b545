export * from './rule-contract.js';
export * from './store-contract.js';
