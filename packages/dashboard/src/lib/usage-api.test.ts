import { describe, expect, it } from 'vitest';
import { usageParams } from './usage-api.js';

describe('usageParams', () => {
  const filters = {
    app: ['chat'],
    model: [],
    user: ['a', 'b'],
    tag: { key: 'team', value: 'x y' },
  };

  it('renders a request the API accepts', () => {
    const q = usageParams({
      fromMs: Date.UTC(2026, 0, 1),
      toMs: Date.UTC(2026, 0, 2),
      interval: 'hour',
      groupBy: ['user', 'model'],
      filters,
      orderBy: 'costUsd',
      order: 'desc',
      limit: 20,
    });
    expect(q.toString()).toBe(
      'from=2026-01-01T00%3A00%3A00.000Z&to=2026-01-02T00%3A00%3A00.000Z&interval=hour&groupBy=user%2Cmodel&app=chat&user=a&user=b&tag.team=x+y&orderBy=costUsd&order=desc&limit=20',
    );
  });

  it('"only" replaces one dimension\'s filter', () => {
    const q = usageParams({ fromMs: 0, toMs: 1, filters, only: { user: ['top1'] } });
    expect(q.getAll('user')).toEqual(['top1']);
    expect(q.getAll('app')).toEqual(['chat']);
    expect(q.get('limit')).toBe('10000');
  });
});
