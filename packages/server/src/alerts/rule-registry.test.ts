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

  it('puts a rule into effect before the store has it, and keeps it across a stale reload', async () => {
    const { store, registry } = await setup();
    const rule = makeRule({ projectId: 'p1' });
    registry.put(rule);
    expect(registry.rulesFor(['p1']).map((c) => c.rule.id)).toEqual([rule.id]);
    // A periodic reload that read the store before the rule was created must not drop it.
    await registry.load();
    expect(registry.rulesFor(['p1']).map((c) => c.rule.id)).toEqual([rule.id]);
    await store.createRule(rule, 0);
    await registry.settle('p1', rule.id);
    expect(registry.rulesFor(['p1']).map((c) => c.rule.id)).toEqual([rule.id]);
    expect(registry.rulesFor(['p2'])).toEqual([]);
  });

  it('takes a removed rule out of effect at once, and a refused change back out on settle', async () => {
    const { store, registry } = await setup();
    const rule = makeRule({ projectId: 'p1' });
    await store.createRule(rule, 0);
    await registry.load();
    registry.remove('p1', rule.id);
    expect(registry.rulesFor(['p1'])).toEqual([]);
    await registry.load();
    expect(registry.rulesFor(['p1'])).toEqual([]);
    // The delete never reached the store (say it failed): settling restores the stored truth.
    await registry.settle('p1', rule.id);
    expect(registry.rulesFor(['p1']).map((c) => c.rule.id)).toEqual([rule.id]);
  });

  it('keeps disabled rules out of evaluation', async () => {
    const { store, registry } = await setup();
    await store.createRule(makeRule({ projectId: 'p1', enabled: false }), 0);
    await registry.load();
    expect(registry.rulesFor(['p1'])).toEqual([]);
  });
});
