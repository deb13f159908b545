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

/** A chart bound to a container; resizes with it; disposed with the view. */
export class ChartHost {
  private chart: EChartsType | undefined;
  private readonly observer: ResizeObserver;

  constructor(readonly el: HTMLElement) {
    this.observer = new ResizeObserver(() => this.chart?.resize());
    this.observer.observe(el);
  }

  private disposed = false;

  set(option: EChartsOption): void {
    // A refresh that finishes after its view was left draws nothing.
    if (this.disposed) return;
    if (!this.chart) this.chart = init(this.el, undefined, { renderer: 'canvas' });
    // notMerge: series come and go with filters; a merge would keep stale ones.
    this.chart.setOption(option, { notMerge: true, lazyUpdate: false });
  }

  dispose(): void {
    this.disposed = true;
    this.observer.disconnect();
    this.chart?.dispose();
    this.chart = undefined;
  }
}
