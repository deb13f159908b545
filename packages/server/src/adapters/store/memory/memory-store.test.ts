import { runRuleContract, runRuleOracleContract, runStoreContract } from '@tokenwatch/core/testing';
import { MemoryStore } from './memory-store.js';

runStoreContract('in-memory twin', async () => ({
  store: new MemoryStore(),
  cleanup: async () => {},
}));

runRuleContract('in-memory twin', async () => ({
  store: new MemoryStore(),
  cleanup: async () => {},
}));

runRuleOracleContract(
  'in-memory twin',
  async () => ({ store: new MemoryStore(), cleanup: async () => {} }),
  // The reference twin: 2,000 cases keep CI short; the adapters users run get 10,000 (DynamoDB 3,000).
  { cases: Number(process.env.TW_ORACLE_CASES ?? 2_000), seed: 20261203 },
);
