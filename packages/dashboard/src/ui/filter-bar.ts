import { append, clear, h } from '../lib/html.js';
import { type Interval, PRESETS, type PresetId, resolveRange } from '../lib/time-range.js';
import { hasFilters, type ViewState } from '../lib/url-state.js';
import type { AppContext } from '../views/context.js';
import { attachUserSearch } from './user-search.js';

type Dim = 'app' | 'model' | 'user';
const DIM_LABEL: Record<Dim, string> = { app: 'App', model: 'Model', user: 'User' };

/** `datetime-local` value (viewer's zone) ↔ epoch ms. */
function toLocalInput(ms: number): string {
  const d = new Date(ms);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/**
 * Time range (presets and custom), interval, and filters by app, model, user and one tag. Every
 * change navigates, so the URL always holds the whole state.
 */
export function renderFilterBar(el: HTMLElement, ctx: AppContext): void {
  clear(el);
  const s = ctx.state;
  const go = (next: ViewState) => ctx.navigate(next);
  const preset = 'preset' in s.range ? s.range.preset : 'custom';
  const resolved = resolveRange(s.range, ctx.now(), {
    interval: s.interval,
    hasTagFilter: !!s.filters.tag,
  });

  const fromInput = h('input', {
    attrs: {
      type: 'datetime-local',
      'aria-label': 'From',
      name: 'from',
      value: toLocalInput(resolved.fromMs),
    },
  });
  const toInput = h('input', {
    attrs: {
      type: 'datetime-local',
      'aria-label': 'To',
      name: 'to',
      value: toLocalInput(resolved.toMs),
    },
  });
  const custom = h(
    'form',
    {
      class: 'custom-range',
      attrs: { hidden: preset !== 'custom' },
      on: {
        submit: (ev) => {
          ev.preventDefault();
          const fromMs = new Date(fromInput.value).getTime();
          const toMs = new Date(toInput.value).getTime();
          if (!Number.isFinite(fromMs) || !Number.isFinite(toMs) || fromMs >= toMs) {
            toInput.setCustomValidity('"To" must be after "From".');
            toInput.reportValidity();
            return;
          }
          go({ ...s, range: { fromMs, toMs } });
        },
      },
    },
    fromInput,
    h('span', { class: 'muted' }, '–'),
    toInput,
    h('button', { class: 'btn btn-small', attrs: { type: 'submit' } }, 'Apply'),
  );
  const rangeSelect = h(
    'select',
    {
      attrs: { 'aria-label': 'Time range', name: 'range' },
      on: {
        change: () => {
          const v = rangeSelect.value;
          if (v === 'custom') {
            custom.hidden = false;
            fromInput.focus();
            return;
          }
          go({ ...s, range: { preset: v as PresetId } });
        },
      },
    },
    ...Object.entries(PRESETS).map(([id, p]) =>
      h('option', { attrs: { value: id, selected: id === preset } }, p.label),
    ),
    h('option', { attrs: { value: 'custom', selected: preset === 'custom' } }, 'Custom…'),
  );
  const intervalSelect = h(
    'select',
    {
      attrs: { 'aria-label': 'Interval', name: 'interval' },
      on: { change: () => go({ ...s, interval: intervalSelect.value as Interval | 'auto' }) },
    },
    ...(['auto', 'minute', 'hour', 'day'] as const).map((v) =>
      h(
        'option',
        { attrs: { value: v, selected: v === s.interval } },
        v === 'auto' ? `Auto (${resolved.interval})` : `Per ${v}`,
      ),
    ),
  );

  const chips: HTMLElement[] = [];
  for (const dim of ['app', 'model', 'user'] as Dim[]) {
    for (const value of s.filters[dim]) {
      chips.push(
        chip(`${DIM_LABEL[dim]}: `, value, () =>
          go({ ...s, filters: { ...s.filters, [dim]: s.filters[dim].filter((v) => v !== value) } }),
        ),
      );
    }
  }
  if (s.filters.tag) {
    const tag = s.filters.tag;
    chips.push(
      chip('Tag: ', `${tag.key}=${tag.value}`, () =>
        go({ ...s, filters: { ...s.filters, tag: undefined } }),
      ),
    );
  }

  const adders = (['app', 'model', 'user'] as Dim[]).map((dim) =>
    adder(ctx, dim, resolved.aggFromMs, resolved.toMs),
  );
  const tagInput = h('input', {
    attrs: {
      type: 'text',
      placeholder: 'tag key=value',
      'aria-label': 'Add a tag filter (key=value)',
      name: 'tag',
      size: 14,
    },
    on: {
      keydown: (ev) => {
        if (ev.key !== 'Enter') return;
        ev.preventDefault();
        const text = tagInput.value.trim();
        const eq = text.indexOf('=');
        const key = eq > 0 ? text.slice(0, eq).trim() : '';
        if (!/^[A-Za-z0-9_.:-]{1,64}$/.test(key)) {
          tagInput.setCustomValidity('Write key=value; a key is letters, digits and _ . : -');
          tagInput.reportValidity();
          return;
        }
        go({ ...s, filters: { ...s.filters, tag: { key, value: text.slice(eq + 1).trim() } } });
      },
      input: () => tagInput.setCustomValidity(''),
    },
  });

  append(el, [
    h(
      'div',
      { class: 'filter-row' },
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Range'), rangeSelect),
      custom,
      h(
        'label',
        { class: 'field' },
        h('span', { class: 'field-label' }, 'Interval'),
        intervalSelect,
      ),
      ...adders.map((a) => a.el),
      h('label', { class: 'field' }, h('span', { class: 'field-label' }, 'Tag'), tagInput),
    ),
    chips.length > 0
      ? h(
          'div',
          { class: 'chip-row', attrs: { 'aria-label': 'Active filters' } },
          ...chips,
          hasFilters(s.filters)
            ? h(
                'button',
                {
                  class: 'btn btn-link',
                  attrs: { type: 'button' },
                  on: {
                    click: () =>
                      go({ ...s, filters: { app: [], model: [], user: [], tag: undefined } }),
                  },
                },
                'Clear filters',
              )
            : null,
        )
      : null,
  ]);

  function adder(c: AppContext, dim: Dim, fromMs: number, toMs: number): { el: HTMLElement } {
    const listId = `suggest-${dim}`;
    const list = h('datalist', { attrs: { id: listId } });
    let loaded = false;
    const input = h('input', {
      attrs: {
        type: 'text',
        list: listId,
        name: `add-${dim}`,
        placeholder: dim === 'user' ? 'search users' : `any ${dim}`,
        'aria-label': `Add a ${dim} filter`,
        autocomplete: 'off',
        size: 14,
      },
      on: {
        focus: () => {
          // Users are searched on the server as they are typed (every user, not the top 200).
          if (loaded || dim === 'user') return;
          loaded = true;
          void c.api
            .usage({
              fromMs,
              toMs,
              groupBy: [dim],
              filters: { ...c.state.filters, [dim]: [] },
              orderBy: 'totalTokens',
              order: 'desc',
              limit: 200,
            })
            .then((res) => {
              for (const row of res.rows) {
                const v = row[dim];
                if (v !== undefined) list.appendChild(h('option', { attrs: { value: v } }));
              }
            })
            .catch(() => {
              loaded = false;
            });
        },
        keydown: (ev) => {
          if (ev.key === 'Enter') {
            ev.preventDefault();
            add();
          }
        },
        // Picking a suggestion from the list adds it at once.
        input: (ev) => {
          const type = (ev as InputEvent).inputType;
          const picked = type === undefined || type === 'insertReplacementText';
          if (picked && [...list.options].some((o) => o.value === input.value)) add();
        },
      },
    });
    if (dim === 'user') attachUserSearch(input, list, c.api, { fromMs, toMs });
    const add = () => {
      const v = input.value.trim();
      if (!v || c.state.filters[dim].includes(v)) return;
      go({ ...c.state, filters: { ...c.state.filters, [dim]: [...c.state.filters[dim], v] } });
    };
    return {
      el: h(
        'label',
        { class: 'field' },
        h('span', { class: 'field-label' }, DIM_LABEL[dim]),
        input,
        list,
      ),
    };
  }
}

function chip(prefix: string, value: string, onRemove: () => void): HTMLElement {
  return h(
    'span',
    { class: 'chip', dataset: { filter: `${prefix}${value}` } },
    h('span', { class: 'muted' }, prefix),
    h('span', { class: 'chip-value', attrs: { title: value } }, value),
    h(
      'button',
      {
        class: 'chip-remove',
        attrs: { type: 'button', 'aria-label': `Remove filter ${prefix}${value}` },
        on: { click: onRemove },
      },
      '×',
    ),
  );
}
