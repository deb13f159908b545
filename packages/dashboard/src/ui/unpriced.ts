import { formatInteger, formatTokens } from '../lib/format.js';
import { clear, h } from '../lib/html.js';
import type { UsageRow } from '../lib/usage-api.js';
import { type AppContext, rangeOf } from '../views/context.js';
import { idCell, scrollBox } from './id-text.js';
import { Panel } from './panel.js';
import type { RefreshablePanel } from './rules-panels.js';

/** What the caller's totals already say about the range. */
export interface KnownGaps {
  unpricedTokens: number;
  noUsageRequests: number;
}

/**
 * The warning for usage missing from the cost: tokens of models without a price (counted, in no
 * cost figure), and calls that returned no usage (counted as requests, tokens and cost unknown).
 * Hidden when there is neither in the range.
 */
export function unpricedPanel(ctx: AppContext): RefreshablePanel & {
  /** Same, but skips the query when the caller already knows the range has neither. */
  refreshKnowing(known: KnownGaps | undefined): Promise<void>;
} {
  const panel = new Panel({
    id: 'unpriced',
    title: 'Missing from the cost',
    subtitle: 'Unpriced models and calls without usage are counted, but in no cost figure',
    class: 'panel-warn span-all',
  });
  panel.el.hidden = true;
  const refresh = async () => {
    const r = rangeOf(ctx);
    const res = await ctx.api.usage({
      fromMs: r.aggFromMs,
      toMs: r.toMs,
      groupBy: ['model', 'provider'],
      filters: ctx.state.filters,
      orderBy: 'unpricedTokens',
      order: 'desc',
      limit: 1000,
    });
    const rows = res.rows.filter((x) => x.unpricedTokens > 0);
    const noUsage = res.rows.reduce((a, x) => a + (x.noUsageRequests ?? 0), 0);
    panel.el.hidden = rows.length === 0 && noUsage === 0;
    clear(panel.body);
    if (panel.el.hidden) {
      panel.setStatus('empty');
      panel.setData(undefined);
      return;
    }
    panel.setStatus('ready');
    if (noUsage > 0) {
      panel.body.appendChild(
        h(
          'p',
          { class: 'warn-text', attrs: { role: 'alert' }, dataset: { warning: 'no-usage' } },
          `${formatInteger(noUsage)} call${noUsage === 1 ? '' : 's'} returned no usage: counted as requests, but their tokens and cost are unknown.`,
        ),
      );
    }
    if (rows.length === 0) {
      panel.setData(undefined);
      return;
    }
    const tokens = rows.reduce((a, x) => a + x.unpricedTokens, 0);
    const requests = rows.reduce((a, x) => a + x.unpricedRequests, 0);
    panel.body.appendChild(
      h(
        'p',
        { class: 'warn-text', attrs: { role: 'alert' } },
        `${rows.length} model${rows.length === 1 ? '' : 's'} without a price: ${formatTokens(tokens)} tokens in ${formatInteger(requests)} requests are missing from every cost figure.`,
      ),
    );
    panel.body.appendChild(
      scrollBox(
        'Models without a price',
        h(
          'table',
          { class: 'data-table' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              h('th', { attrs: { scope: 'col' } }, 'Model'),
              h('th', { attrs: { scope: 'col' } }, 'Provider'),
              h('th', { attrs: { scope: 'col' }, class: 'num' }, 'Unpriced tokens'),
              h('th', { attrs: { scope: 'col' }, class: 'num' }, 'Requests'),
            ),
          ),
          h(
            'tbody',
            null,
            ...rows.map((x: UsageRow) =>
              h(
                'tr',
                { dataset: { model: x.model ?? '' } },
                idCell(x.model ?? ''),
                h('td', null, x.provider ?? ''),
                h('td', { class: 'num' }, formatInteger(x.unpricedTokens)),
                h('td', { class: 'num' }, formatInteger(x.unpricedRequests)),
              ),
            ),
          ),
        ),
      ),
    );
    const first = rows[0] as UsageRow;
    const example = JSON.stringify({
      provider: first.provider ?? 'bedrock',
      modelId: first.model ?? '',
      effectiveFrom: new Date(ctx.now()).toISOString().slice(0, 10),
      input: '3.00',
      output: '15.00',
      cacheRead: '0.30',
      cacheWrite: '3.75',
    });
    panel.body.appendChild(
      h(
        'details',
        { class: 'howto' },
        h('summary', null, 'Add a price (USD per million tokens; an admin key)'),
        h(
          'pre',
          { class: 'snippet' },
          `curl -sS -X PUT ${ctx.origin}/v1/prices -H "Authorization: Bearer $ADMIN_KEY" \\\n  -H 'Content-Type: application/json' -d '${example.replace(/'/g, "'\\''")}'`,
        ),
        h(
          'p',
          { class: 'muted' },
          'Usage is priced when it is counted: a new price applies to events counted after it is added.',
        ),
      ),
    );
    panel.setData({
      columns: [
        { key: 'model', label: 'model' },
        { key: 'provider', label: 'provider' },
        { key: 'unpricedTokens', label: 'unpricedTokens' },
        { key: 'unpricedRequests', label: 'unpricedRequests' },
      ],
      rows: rows.map((x) => ({
        model: x.model,
        provider: x.provider,
        unpricedTokens: x.unpricedTokens,
        unpricedRequests: x.unpricedRequests,
      })),
      fileParts: ['unpriced-models'],
    });
  };
  const refreshKnowing = async (known: KnownGaps | undefined) => {
    if (known && known.unpricedTokens === 0 && known.noUsageRequests === 0) {
      panel.el.hidden = true;
      panel.setStatus('empty');
      panel.setData(undefined);
      clear(panel.body);
      return;
    }
    await refresh();
  };
  return { panel, refresh, refreshKnowing };
}
