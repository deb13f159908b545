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
  { cases: Number(process.env.TW_ORACLE_CASES ?? 10_000), seed: 20261203 },
);
