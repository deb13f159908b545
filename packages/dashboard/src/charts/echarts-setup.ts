import type { EChartsOption } from 'echarts';
import { BarChart, HeatmapChart, PieChart } from 'echarts/charts';
import {
  AriaComponent,
  GridComponent,
  LegendComponent,
  TooltipComponent,
  VisualMapComponent,
} from 'echarts/components';
import { type EChartsType, getInstanceByDom, init, use } from 'echarts/core';
import { CanvasRenderer } from 'echarts/renderers';
import { type ChartItem, ChartKeys } from './chart-keys.js';

// Only what the dashboard draws: keeps the bundle small.
use([
  BarChart,
  PieChart,
  HeatmapChart,
  GridComponent,
  TooltipComponent,
  LegendComponent,
  VisualMapComponent,
  AriaComponent,
  CanvasRenderer,
]);

declare global {
  interface Window {
    /** Read-only hooks for browser tests: the chart instance of a container. */
    tokenwatchCharts?: { getInstanceByDom: typeof getInstanceByDom };
  }
}
window.tokenwatchCharts = { getInstanceByDom };

/** What was clicked (or chosen with the keyboard) in a chart: its series and data item. */
export type ChartClick = ChartItem;

/** A chart bound to a container; resizes with it; disposed with the view. */
export class ChartHost {
  private chart: EChartsType | undefined;
  private readonly observer: ResizeObserver;

  constructor(readonly el: HTMLElement) {
    this.observer = new ResizeObserver(() => {
      // A chart whose layout depends on its width (the pie) is drawn again for the new width.
      if (this.build) this.set(this.build(this.el.clientWidth));
      else this.chart?.resize();
    });
    this.observer.observe(el);
  }

  private disposed = false;
  private build: ((width: number) => EChartsOption) | undefined;

  /** Draws `build(width)` now and again whenever the container's width changes. */
  setForWidth(build: (width: number) => EChartsOption): void {
    this.build = build;
    this.set(build(this.el.clientWidth));
  }

  private clickHandler: ((item: ChartClick) => void) | undefined;

  /** Calls `handler` when a bar, slice or cell is clicked (drill-down). */
  onClick(handler: (item: ChartClick) => void): void {
    this.clickHandler = handler;
    this.el.dataset.clickable = 'true';
    this.keys ??= new ChartKeys(
      this.el,
      () => this.chart,
      (item) => this.clickHandler?.(item),
    );
  }

  /** Keyboard drill-down, once the chart has a click handler. */
  private keys: ChartKeys | undefined;

  set(option: EChartsOption): void {
    // A refresh that finishes after its view was left draws nothing.
    if (this.disposed) return;
    if (!this.chart) {
      this.chart = init(this.el, undefined, { renderer: 'canvas' });
      this.chart.on('click', (raw) => {
        const p = raw as {
          seriesIndex?: number;
          seriesName?: string;
          dataIndex: number;
          name?: string;
          value?: unknown;
        };
        if (p.seriesIndex === undefined) return;
        this.clickHandler?.({
          seriesIndex: p.seriesIndex,
          seriesName: p.seriesName ?? '',
          dataIndex: p.dataIndex,
          name: p.name ?? '',
          value: p.value,
        });
      });
    }
    // Motion is a nuisance (or worse) to some: honour the system's "reduce motion".
    const still = matchMedia('(prefers-reduced-motion: reduce)').matches;
    this.keys?.reset();
    // notMerge: series come and go with filters; a merge would keep stale ones.
    this.chart.setOption(still ? { ...option, animation: false } : option, {
      notMerge: true,
      lazyUpdate: false,
    });
  }

  dispose(): void {
    this.disposed = true;
    this.observer.disconnect();
    this.chart?.dispose();
    this.chart = undefined;
  }
}
