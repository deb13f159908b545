import type { EChartsOption } from 'echarts';
import { BarChart, HeatmapChart, PieChart } from 'echarts/charts';
import {
  AriaComponent,
  GridComponent,
  LegendComponent,
  MarkAreaComponent,
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
  MarkAreaComponent,
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
