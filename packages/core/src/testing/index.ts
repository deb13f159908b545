export * from './rule-contract.js';
export * from './rule-oracle.js';
export * from './rule-oracle-cases.js';
export * from './rule-oracle-contract.js';
export * from './store-contract.js';
