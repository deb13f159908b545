import { formatCost, formatInteger, formatPercent, formatTokens } from '../lib/format.js';
import { clear, h } from '../lib/html.js';
import { idText, scrollBox } from './id-text.js';
import { sparkline } from './sparkline.js';

export interface TopRow {
  name: string;
  totalTokens: number;
  costUsd: number;
  requests: number;
  unpricedTokens: number;
  noUsageRequests?: number;
  spark: number[];
}

/** A ranked table with share of the total and a sparkline per row. `link` makes names clickable. */
export function renderTopTable(
  el: HTMLElement,
  opts: {
    label: string;
    rows: TopRow[];
    totalTokens: number;
    sparkLabel: string;
    link?: (name: string) => { href: string; onClick: (ev: MouseEvent) => void };
  },
): void {
  clear(el);
  if (opts.rows.length === 0) {
    el.appendChild(h('p', { class: 'muted empty-panel' }, 'No usage in this range.'));
    return;
  }
  el.appendChild(
    scrollBox(
      `Ranking by ${opts.label.toLowerCase()}`,
      h(
        'table',
        { class: 'data-table top-table' },
        h(
          'thead',
          null,
          h(
            'tr',
            null,
            h('th', { attrs: { scope: 'col' }, class: 'num' }, '#'),
            h('th', { attrs: { scope: 'col' } }, opts.label),
            h('th', { attrs: { scope: 'col' }, class: 'num' }, 'Tokens'),
            h('th', { attrs: { scope: 'col' }, class: 'num col-optional' }, 'Share'),
            h('th', { attrs: { scope: 'col' }, class: 'num' }, 'Cost'),
            h('th', { attrs: { scope: 'col' }, class: 'num col-optional' }, 'Requests'),
            h('th', { attrs: { scope: 'col' }, class: 'col-optional' }, opts.sparkLabel),
          ),
        ),
        h(
          'tbody',
          null,
          ...opts.rows.map((r, i) => {
            const link = opts.link?.(r.name);
            const name = idText(r.name, link);
            return h(
              'tr',
              {
                dataset: {
                  name: r.name,
                  tokens: String(r.totalTokens),
                  cost: String(r.costUsd),
                  requests: String(r.requests),
                },
              },
              h('td', { class: 'num muted' }, String(i + 1)),
              h(
                'td',
                { class: 'name-cell' },
                h(
                  'div',
                  { class: 'name-wrap' },
                  name,
                  r.unpricedTokens > 0
                    ? h(
                        'span',
                        {
                          class: 'badge badge-warn',
                          attrs: { title: `${formatInteger(r.unpricedTokens)} unpriced tokens` },
                        },
                        'unpriced',
                      )
                    : null,
                ),
              ),
              h(
                'td',
                { class: 'num', attrs: { title: formatInteger(r.totalTokens) } },
                formatTokens(r.totalTokens),
              ),
              h(
                'td',
                { class: 'num col-optional' },
                formatPercent(r.totalTokens, opts.totalTokens),
              ),
              h('td', { class: 'num' }, formatCost(r.costUsd, r)),
              h('td', { class: 'num col-optional' }, formatInteger(r.requests)),
              h(
                'td',
                { class: 'spark-cell col-optional' },
                sparkline(r.spark, `${opts.sparkLabel} of ${r.name}`),
              ),
            );
          }),
        ),
      ),
    ),
  );
}
