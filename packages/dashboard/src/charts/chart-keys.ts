import type { EChartsType } from 'echarts/core';

/** One item of a drawn chart: a bar, a slice or a heat-map cell. */
export interface ChartItem {
  seriesIndex: number;
  seriesName: string;
  dataIndex: number;
  /** The item's name: the category of a bar, the slice of a pie, "app × user" of a cell. */
  name: string;
  value: unknown;
}

interface DrawnSeries {
  name?: unknown;
  data?: unknown[];
}
interface DrawnAxis {
  type?: string;
  data?: unknown[];
}
interface DrawnOption {
  series?: DrawnSeries[];
  xAxis?: DrawnAxis[];
  yAxis?: DrawnAxis[];
}

function axisLabel(axis: DrawnAxis | undefined, index: unknown): string | undefined {
  if (typeof index !== 'number') return undefined;
  const label = axis?.data?.[index];
  if (label === undefined) return undefined;
  return typeof label === 'object' && label !== null && 'value' in label
    ? String((label as { value: unknown }).value)
    : String(label);
}

/** The item at (series, data index) as a click on it reports it; undefined for a gap. */
export function itemAt(
  option: DrawnOption,
  seriesIndex: number,
  dataIndex: number,
): ChartItem | undefined {
  const series = option.series?.[seriesIndex];
  const raw = series?.data?.[dataIndex];
  if (raw === undefined || raw === null || raw === '-') return undefined;
  const boxed = typeof raw === 'object' && !Array.isArray(raw);
  const value = boxed && 'value' in raw ? (raw as { value: unknown }).value : raw;
  if (value === undefined || value === null || value === '-') return undefined;
  let name: string;
  if (boxed && 'name' in raw) name = String((raw as { name: unknown }).name);
  else if (Array.isArray(value)) {
    // A heat-map cell: [x, y, value] over two category axes.
    const x = axisLabel(option.xAxis?.[0], value[0]);
    const y = axisLabel(option.yAxis?.[0], value[1]);
    name = [x, y].filter((s) => s !== undefined).join(' × ');
  } else {
    const categories = [option.xAxis?.[0], option.yAxis?.[0]].find((a) => a?.type === 'category');
    name = axisLabel(categories, dataIndex) ?? '';
  }
  return {
    seriesIndex,
    seriesName: typeof series?.name === 'string' ? series.name : '',
    dataIndex,
    name,
    value,
  };
}

/** What a screen reader hears for an item. */
export function describeItem(item: ChartItem): string {
  const v = Array.isArray(item.value) ? item.value[item.value.length - 1] : item.value;
  const amount = typeof v === 'number' ? v.toLocaleString('en-US') : String(v);
  const pie = item.seriesName === '' || item.seriesName === item.name;
  return `${pie ? item.name : `${item.seriesName}, ${item.name}`}: ${amount}. Enter opens it.`;
}

/**
 * Keyboard access to a chart's drill-down: the chart takes focus; the arrow keys move between
 * its items (left/right within a series, up/down across series), the tooltip shows the item and
 * a live region says it; Enter or Space does what a click on it does. Without this, every
 * drill-down was mouse-only.
 */
export class ChartKeys {
  private seriesIndex = 0;
  private dataIndex = -1;
  private readonly announcer: HTMLElement;

  constructor(
    el: HTMLElement,
    private readonly chart: () => EChartsType | undefined,
    private readonly activate: (item: ChartItem) => void,
  ) {
    el.tabIndex = 0;
    el.setAttribute('role', 'application');
    el.setAttribute('aria-roledescription', 'chart');
    el.setAttribute(
      'aria-label',
      'Chart: arrow keys move between items, Enter opens the view filtered to one',
    );
    this.announcer = document.createElement('p');
    this.announcer.className = 'visually-hidden';
    this.announcer.setAttribute('aria-live', 'polite');
    el.after(this.announcer);
    el.addEventListener('keydown', (ev) => this.onKey(ev));
    el.addEventListener('blur', () => this.chart()?.dispatchAction({ type: 'hideTip' }));
  }

  /** The chart was drawn again (new data): start from its first item. */
  reset(): void {
    this.seriesIndex = 0;
    this.dataIndex = -1;
  }

  private option(): DrawnOption {
    return (this.chart()?.getOption() ?? {}) as DrawnOption;
  }

  private onKey(ev: KeyboardEvent): void {
    const option = this.option();
    const seriesCount = option.series?.length ?? 0;
    if (seriesCount === 0) return;
    const step: Record<string, [number, number]> = {
      ArrowRight: [0, 1],
      ArrowLeft: [0, -1],
      ArrowDown: [1, 0],
      ArrowUp: [-1, 0],
    };
    const move = step[ev.key];
    if (move) {
      ev.preventDefault();
      this.moveBy(option, move[0], move[1]);
      return;
    }
    if ((ev.key === 'Enter' || ev.key === ' ') && this.dataIndex >= 0) {
      ev.preventDefault();
      const item = itemAt(option, this.seriesIndex, this.dataIndex);
      if (item) this.activate(item);
    }
  }

  /**
   * Moves one step, past gaps (a stacked bar's series has no item where it is 0 or absent); at
   * the edge it stays. The first key goes to the first item.
   */
  private moveBy(option: DrawnOption, dSeries: number, dData: number): void {
    const seriesCount = option.series?.length ?? 0;
    const length = (i: number) => option.series?.[i]?.data?.length ?? 0;
    if (this.dataIndex < 0) {
      for (let s = 0; s < seriesCount; s++)
        for (let d = 0; d < length(s); d++) {
          const item = itemAt(option, s, d);
          if (item) {
            this.show(item);
            return;
          }
        }
      return;
    }
    let s = this.seriesIndex;
    let d = this.dataIndex;
    for (;;) {
      s += dSeries;
      d += dData;
      if (s < 0 || s >= seriesCount || d < 0 || d >= length(s)) return;
      const item = itemAt(option, s, d);
      if (item) {
        this.show(item);
        return;
      }
    }
  }

  private show(item: ChartItem): void {
    const chart = this.chart();
    if (!chart) return;
    if (this.dataIndex >= 0)
      chart.dispatchAction({
        type: 'downplay',
        seriesIndex: this.seriesIndex,
        dataIndex: this.dataIndex,
      });
    this.seriesIndex = item.seriesIndex;
    this.dataIndex = item.dataIndex;
    chart.dispatchAction({
      type: 'highlight',
      seriesIndex: item.seriesIndex,
      dataIndex: item.dataIndex,
    });
    chart.dispatchAction({
      type: 'showTip',
      seriesIndex: item.seriesIndex,
      dataIndex: item.dataIndex,
    });
    this.announcer.textContent = describeItem(item);
  }
}
