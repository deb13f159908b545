import { runRuleContract, runStoreContract } from '@tokenwatch/core/testing';
import { MemoryStore } from './memory-store.js';

runStoreContract('in-memory twin', async () => ({
  store: new MemoryStore(),
  cleanup: async () => {},
}));

runRuleContract('in-memory twin', async () => ({
  store: new MemoryStore(),
  cleanup: async () => {},
}));
