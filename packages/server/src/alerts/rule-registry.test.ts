import { makeRule } from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import { MemoryStore } from '../adapters/store/memory/memory-store.js';
import { createLogger } from '../logging/logger.js';
import { RuleRegistry } from './rule-registry.js';

describe('RuleRegistry', () => {
  async function setup() {
    const store = new MemoryStore();
    await store.createProject({ id: 'p1', name: 'p1', createdAtMs: 0 });
    const registry = new RuleRegistry(store, createLogger('silent'));
    await registry.load();
    return { store, registry };
  }

  it('follows the store: new, changed and deleted rules, per project', async () => {
    const { store, registry } = await setup();
    let changes = 0;
    registry.onChange(() => changes++);
    const rule = makeRule({ projectId: 'p1' });
    await store.createRule(rule, 0);
    await registry.load();
    expect(registry.rulesFor(['p1']).map((c) => c.rule.id)).toEqual([rule.id]);
    expect(registry.rulesFor(['p2'])).toEqual([]);
    await registry.load(); // nothing changed: no listener call
    expect(changes).toBe(1);
    await store.deleteRule('p1', rule.id);
    await registry.load();
    expect(registry.all()).toEqual([]);
    expect(changes).toBe(2);
  });

  it('keeps disabled rules out', async () => {
    const { store, registry } = await setup();
    await store.createRule(makeRule({ projectId: 'p1', enabled: false }), 0);
    await registry.load();
    expect(registry.rulesFor(['p1'])).toEqual([]);
  });
});
