import { formatInteger, formatTokens } from '../lib/format.js';
import { clear, h } from '../lib/html.js';
import type { UsageRow } from '../lib/usage-api.js';
import { type AppContext, rangeOf } from '../views/context.js';
import { Panel } from './panel.js';
import type { RefreshablePanel } from './rules-panels.js';

/**
 * The warning for usage without a price: it is counted but in no cost figure. Hidden when every
 * model in the range is priced.
 */
export function unpricedPanel(ctx: AppContext): RefreshablePanel & {
  /** Same, but skips the query when the caller already knows the range has no unpriced usage. */
  refreshKnowing(unpricedTokens: number | undefined): Promise<void>;
} {
  const panel = new Panel({
    id: 'unpriced',
    title: 'Unpriced models',
    subtitle: 'Their tokens are counted, but they are in no cost figure',
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
      limit: 100,
    });
    const rows = res.rows.filter((x) => x.unpricedTokens > 0);
    panel.el.hidden = rows.length === 0;
    clear(panel.body);
    if (rows.length === 0) {
      panel.setStatus('empty');
      panel.setData(undefined);
      return;
    }
    panel.setStatus('ready');
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
              h('td', null, x.model ?? ''),
              h('td', null, x.provider ?? ''),
              h('td', { class: 'num' }, formatInteger(x.unpricedTokens)),
              h('td', { class: 'num' }, formatInteger(x.unpricedRequests)),
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
  const refreshKnowing = async (unpricedTokens: number | undefined) => {
    if (unpricedTokens === 0) {
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
