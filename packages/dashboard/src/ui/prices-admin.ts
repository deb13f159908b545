import { clear, h } from '../lib/html.js';
import type { AppContext } from '../views/context.js';
import { confirmButton, field, formError, textInput } from './form-bits.js';
import { idText, scrollBox } from './id-text.js';
import { Panel } from './panel.js';
import type { RefreshablePanel } from './rules-panels.js';

interface Override {
  provider: string;
  modelId: string;
  effectiveFrom: string;
  input: string;
  output: string;
  cacheRead?: string;
  cacheWrite?: string;
}

const PRICE_FIELDS = ['input', 'output', 'cacheRead', 'cacheWrite'] as const;

/**
 * The project's price overrides (admin keys only): list, add or replace (`PUT /v1/prices`),
 * remove. Prices are decimal strings of USD per million tokens, sent as typed; the server
 * checks them and its message shows on a 400.
 */
export function pricesAdminPanel(ctx: AppContext): RefreshablePanel {
  const panel = new Panel({
    id: 'prices-admin',
    title: 'Price overrides',
    subtitle: 'USD per million tokens; they apply to usage from their date on',
    class: 'span-all',
  });
  const error = formError();
  const inputs = {
    provider: textInput('price-provider', 'bedrock'),
    modelId: textInput('price-model', '', 'model id or inference-profile ARN'),
    effectiveFrom: textInput('price-from', new Date().toISOString().slice(0, 10), 'YYYY-MM-DD'),
    input: textInput('price-input', '', 'e.g. 3.00'),
    output: textInput('price-output', '', 'e.g. 15.00'),
    cacheRead: textInput('price-cache-read', '', 'optional'),
    cacheWrite: textInput('price-cache-write', '', 'optional'),
  };
  const form = h(
    'form',
    {
      class: 'inline-form',
      dataset: { form: 'price' },
      attrs: { 'aria-label': 'Add a price override' },
      on: {
        submit: (ev) => {
          ev.preventDefault();
          void save();
        },
      },
    },
    field('Provider', inputs.provider),
    field('Model', inputs.modelId),
    field('From (UTC date)', inputs.effectiveFrom),
    field('Input', inputs.input),
    field('Output', inputs.output),
    field('Cache read', inputs.cacheRead),
    field('Cache write', inputs.cacheWrite),
    h('button', { class: 'btn btn-primary', attrs: { type: 'submit' } }, 'Save price'),
    error.el,
  );
  const list = h('div');
  panel.body.append(form, list);

  async function save(): Promise<void> {
    error.hide();
    const body: Record<string, string> = {};
    for (const [k, input] of Object.entries(inputs)) {
      if (input.value.trim()) body[k] = input.value.trim();
    }
    try {
      await ctx.api.request('PUT', '/v1/prices', { body });
      for (const k of ['modelId', ...PRICE_FIELDS] as const) inputs[k].value = '';
      await refresh();
    } catch (err) {
      error.show(err, 'save the price');
    }
  }

  async function remove(o: Override): Promise<void> {
    error.hide();
    const params = new URLSearchParams({
      provider: o.provider,
      modelId: o.modelId,
      effectiveFrom: o.effectiveFrom,
    });
    try {
      await ctx.api.request('DELETE', '/v1/prices', { params });
      await refresh();
    } catch (err) {
      error.show(err, 'remove the price');
    }
  }

  async function refresh(): Promise<void> {
    const res = await ctx.api.request<{ overrides: Override[] }>('GET', '/v1/prices');
    const overrides = res.overrides ?? [];
    panel.setStatus(overrides.length === 0 ? 'empty' : 'ready');
    clear(list);
    if (overrides.length === 0) {
      list.appendChild(
        h(
          'p',
          { class: 'muted empty-panel' },
          'No overrides: the bundled catalog prices everything it knows.',
        ),
      );
      return;
    }
    list.appendChild(
      scrollBox(
        'Price overrides',
        h(
          'table',
          { class: 'data-table' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ...[
                'Model',
                'Provider',
                'From',
                'Input',
                'Output',
                'Cache read',
                'Cache write',
                '',
              ].map((c, i) =>
                h('th', { attrs: { scope: 'col' }, class: i >= 3 && i <= 6 ? 'num' : '' }, c),
              ),
            ),
          ),
          h(
            'tbody',
            null,
            ...overrides.map((o) =>
              h(
                'tr',
                { dataset: { model: o.modelId, from: o.effectiveFrom } },
                h(
                  'td',
                  { class: 'name-cell' },
                  h('div', { class: 'name-wrap' }, idText(o.modelId)),
                ),
                h('td', null, o.provider),
                h('td', null, o.effectiveFrom),
                ...PRICE_FIELDS.map((f) => h('td', { class: 'num' }, o[f] ?? '')),
                h(
                  'td',
                  null,
                  confirmButton('Remove', 'Confirm remove', 'remove-price', () => void remove(o)),
                ),
              ),
            ),
          ),
        ),
      ),
    );
  }

  return { panel, refresh };
}
