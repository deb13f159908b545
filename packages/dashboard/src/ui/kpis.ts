import type { Totals } from '../lib/aggregate.js';
import { formatChange, formatCost, formatInteger, formatTokens, nanoToUsd } from '../lib/format.js';
import { clear, h } from '../lib/html.js';

export interface KpiValues {
  current: Totals;
  previous: Totals;
  /** Distinct users, or undefined when not asked. */
  activeUsers?: { current: number; previous: number; note?: string } | 'loading';
}

interface Kpi {
  id: string;
  label: string;
  value: string;
  title: string;
  raw: string;
  change: string;
  /** Whether up is bad (cost, unpriced) for colouring; neutral for counts. */
  tone: 'neutral' | 'warn';
  note?: string;
}

/** The KPI strip: each figure with its change against the previous period of the same length. */
export function renderKpis(el: HTMLElement, v: KpiValues): void {
  const c = v.current;
  const p = v.previous;
  const cost = nanoToUsd(c.costNano);
  const kpis: Kpi[] = [
    {
      id: 'tokens',
      label: 'Tokens',
      value: formatTokens(c.totalTokens),
      title: `${formatInteger(c.totalTokens)} tokens (input ${formatInteger(c.inputTokens)}, output ${formatInteger(c.outputTokens)}, cache read ${formatInteger(c.cacheReadTokens)}, cache write ${formatInteger(c.cacheWriteTokens)})`,
      raw: String(c.totalTokens),
      change: formatChange(c.totalTokens, p.totalTokens),
      tone: 'neutral',
    },
    {
      id: 'cost',
      label: 'Cost',
      value: formatCost(cost, c),
      title:
        cost === 0 && c.unpricedTokens + c.noUsageRequests > 0
          ? 'Unknown: no usage in this range has a price (see "Missing from the cost")'
          : `$${cost} (exact: ${c.costNano} nano-USD)`,
      raw: c.costNano.toString(),
      change: formatChange(cost, nanoToUsd(p.costNano)),
      tone: 'neutral',
    },
    {
      id: 'requests',
      label: 'Requests',
      value: formatTokens(c.requests),
      title: `${formatInteger(c.requests)} requests, ${formatInteger(c.errors)} errors`,
      raw: String(c.requests),
      change: formatChange(c.requests, p.requests),
      tone: 'neutral',
      ...(c.errors > 0 ? { note: `${formatInteger(c.errors)} errors` } : {}),
    },
  ];
  if (v.activeUsers === 'loading') {
    kpis.push({
      id: 'users',
      label: 'Active users',
      value: '…',
      title: 'Counting distinct users…',
      raw: '',
      change: '',
      tone: 'neutral',
    });
  } else if (v.activeUsers) {
    const a = v.activeUsers;
    kpis.push({
      id: 'users',
      label: 'Active users',
      value: formatInteger(a.current),
      title: `${formatInteger(a.current)} distinct users`,
      raw: String(a.current),
      change: formatChange(a.current, a.previous),
      tone: 'neutral',
      ...(a.note ? { note: a.note } : {}),
    });
  }
  kpis.push({
    id: 'unpriced',
    label: 'Unpriced tokens',
    value: formatTokens(c.unpricedTokens),
    title: `${formatInteger(c.unpricedTokens)} tokens in ${formatInteger(c.unpricedRequests)} requests have no price: their cost is not in the totals`,
    raw: String(c.unpricedTokens),
    change: formatChange(c.unpricedTokens, p.unpricedTokens),
    tone: c.unpricedTokens > 0 ? 'warn' : 'neutral',
    ...(c.unpricedTokens > 0 ? { note: 'not in cost' } : {}),
  });
  clear(el);
  for (const k of kpis) {
    el.appendChild(
      h(
        'div',
        {
          class: `kpi kpi-${k.tone}`,
          dataset: { kpi: k.id, value: k.raw },
          attrs: { title: k.title },
        },
        h('div', { class: 'kpi-label' }, k.label),
        h('div', { class: 'kpi-value' }, k.value),
        h(
          'div',
          { class: 'kpi-change' },
          k.change ? h('span', { class: changeClass(k.change) }, k.change) : null,
          k.change ? ' vs previous period' : '',
          k.note ? h('span', { class: 'kpi-note' }, ` · ${k.note}`) : null,
        ),
      ),
    );
  }
}

function changeClass(change: string): string {
  if (change.startsWith('+') || change === 'new') return 'up';
  if (change.startsWith('−')) return 'down';
  return 'flat';
}
