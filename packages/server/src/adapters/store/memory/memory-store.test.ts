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
  // 10,000 cases like every adapter, 1,000 per store: a rule back-fill scans every project's
  // rollups of its range, so one store holding all 10,000 cases costs quadratically (378 s
  // against 60 s split, both measured on the shared 2-core machine at load 8-10).
  { cases: Number(process.env.TW_ORACLE_CASES ?? 10_000), seed: 20261203, casesPerStore: 1_000 },
);
