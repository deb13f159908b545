import { ChartHost } from '../charts/echarts-setup.js';
import {
  type CsvCell,
  type CsvColumn,
  csvFileName,
  type ExportScope,
  toCsv,
  UTF8_BOM,
} from '../lib/csv.js';
import { formatInteger } from '../lib/format.js';
import { clear, h } from '../lib/html.js';

/** What a panel shows, as rows: its accessible table and its CSV export. */
export interface PanelData {
  columns: CsvColumn[];
  rows: Record<string, CsvCell>[];
  /** Parts of the CSV file name, e.g. ["overview", "tokens"]. */
  fileParts: string[];
  /** The range and filters the rows cover, named in the file name; omit when they do not apply. */
  scope?: ExportScope;
}

export interface PanelOptions {
  id: string;
  title: string;
  subtitle?: string;
  /** A chart area of this CSS height; omit for a panel with custom content. */
  chartHeight?: string;
  controls?: Node[];
  /** Extra class for grid placement. */
  class?: string;
}

/**
 * A card with a title, a status line, optional chart, a "Table" toggle that shows the data as an
 * accessible table, and "CSV" that downloads exactly those rows.
 */
export class Panel {
  readonly el: HTMLElement;
  readonly body: HTMLElement;
  readonly chart: ChartHost | undefined;
  private readonly status: HTMLElement;
  private readonly note: HTMLElement;
  private readonly tableWrap: HTMLElement;
  private readonly tableButton: HTMLButtonElement;
  private readonly csvButton: HTMLButtonElement;
  private data: PanelData | undefined;

  constructor(opts: PanelOptions) {
    const titleId = `panel-${opts.id}-title`;
    this.status = h('span', { class: 'panel-status', attrs: { role: 'status' } });
    this.note = h('p', { class: 'panel-note', attrs: { hidden: true } });
    this.tableButton = h(
      'button',
      {
        class: 'btn btn-small',
        attrs: { type: 'button', 'aria-pressed': 'false', disabled: true },
        on: { click: () => this.toggleTable() },
      },
      'Table',
    );
    this.csvButton = h(
      'button',
      {
        class: 'btn btn-small',
        attrs: {
          type: 'button',
          disabled: true,
          'data-action': 'csv',
          title: 'Download what this panel shows as CSV',
        },
        on: { click: () => this.downloadCsv() },
      },
      'CSV',
    );
    this.tableWrap = h('div', { class: 'panel-table', attrs: { hidden: true } });
    this.body = h('div', { class: 'panel-body' });
    let chartEl: HTMLElement | undefined;
    if (opts.chartHeight) {
      chartEl = h('div', {
        class: 'chart',
        dataset: { chart: opts.id },
        style: { height: opts.chartHeight },
      });
      this.body.appendChild(chartEl);
    }
    this.el = h(
      'section',
      {
        class: `panel ${opts.class ?? ''}`,
        attrs: { 'aria-labelledby': titleId },
        dataset: { panel: opts.id, status: 'loading' },
      },
      h(
        'header',
        { class: 'panel-head' },
        h(
          'div',
          { class: 'panel-titles' },
          h('h2', { attrs: { id: titleId } }, opts.title),
          opts.subtitle ? h('p', { class: 'panel-subtitle' }, opts.subtitle) : null,
        ),
        h(
          'div',
          { class: 'panel-actions' },
          ...(opts.controls ?? []),
          this.tableButton,
          this.csvButton,
        ),
      ),
      this.status,
      this.note,
      this.body,
      this.tableWrap,
    );
    this.chart = chartEl ? new ChartHost(chartEl) : undefined;
  }

  setStatus(state: 'loading' | 'ready' | 'empty' | 'error', message = ''): void {
    this.el.dataset.status = state;
    this.status.textContent = message;
    this.status.className = `panel-status panel-status-${state}`;
  }

  setNote(text: string | undefined): void {
    this.note.textContent = text ?? '';
    this.note.hidden = !text;
  }

  setData(data: PanelData | undefined): void {
    this.data = data;
    const has = !!data && data.rows.length > 0;
    this.tableButton.disabled = !has;
    this.csvButton.disabled = !has;
    if (!this.tableWrap.hidden) this.renderTable();
  }

  csv(): string | undefined {
    return this.data ? toCsv(this.data.columns, this.data.rows) : undefined;
  }

  private toggleTable(): void {
    const show = this.tableWrap.hidden;
    this.tableWrap.hidden = !show;
    this.tableButton.setAttribute('aria-pressed', String(show));
    if (show) this.renderTable();
  }

  private renderTable(): void {
    clear(this.tableWrap);
    const data = this.data;
    if (!data) return;
    const shown = data.rows.slice(0, 2000);
    this.tableWrap.appendChild(
      h(
        'table',
        { class: 'data-table' },
        h(
          'thead',
          null,
          h('tr', null, ...data.columns.map((c) => h('th', { attrs: { scope: 'col' } }, c.label))),
        ),
        h(
          'tbody',
          null,
          ...shown.map((r) =>
            h(
              'tr',
              null,
              ...data.columns.map((c) => {
                const v = r[c.key];
                return h(
                  'td',
                  { class: typeof v === 'number' ? 'num' : '' },
                  typeof v === 'number' && Number.isInteger(v) ? formatInteger(v) : String(v ?? ''),
                );
              }),
            ),
          ),
        ),
      ),
    );
    if (data.rows.length > shown.length) {
      this.tableWrap.appendChild(
        h(
          'p',
          { class: 'muted' },
          `First ${shown.length} of ${data.rows.length} rows; CSV has all.`,
        ),
      );
    }
  }

  private downloadCsv(): void {
    const text = this.csv();
    if (!text || !this.data) return;
    const url = URL.createObjectURL(new Blob([UTF8_BOM, text], { type: 'text/csv;charset=utf-8' }));
    const a = h('a', {
      attrs: { href: url, download: csvFileName(this.data.fileParts, Date.now(), this.data.scope) },
    });
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
  }

  dispose(): void {
    this.chart?.dispose();
  }
}

/** Segmented control (radio group) for a small set of options. */
export function segmented<T extends string>(
  label: string,
  options: readonly { value: T; label: string }[],
  current: T,
  onChange: (value: T) => void,
): HTMLElement {
  return h(
    'div',
    { class: 'segmented', attrs: { role: 'group', 'aria-label': label } },
    ...options.map((o) =>
      h(
        'button',
        {
          class: `seg ${o.value === current ? 'seg-on' : ''}`,
          attrs: {
            type: 'button',
            'aria-pressed': String(o.value === current),
            'data-value': o.value,
          },
          on: { click: () => o.value !== current && onChange(o.value) },
        },
        o.label,
      ),
    ),
  );
}
