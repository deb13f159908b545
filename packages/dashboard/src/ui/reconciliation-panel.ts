import { formatDateTime, formatInteger, formatTokens } from '../lib/format.js';
import { clear, h } from '../lib/html.js';
import { ApiError } from '../lib/usage-api.js';
import { type AppContext, rangeOf } from '../views/context.js';
import { Panel } from './panel.js';
import type { RefreshablePanel } from './rules-panels.js';

/** `GET /v1/reconciliation` (see the server's bedrock-routes.ts). */
export interface ReconciliationResponse {
  summary: ReconciliationTotals;
  hours: Array<ReconciliationTotals & { hour: string; settled: boolean }>;
  rows: Array<{
    model: string;
    hour: string;
    metric: string;
    reported: number;
    captured: number;
    difference: number;
    percent: number | null;
    settled: boolean;
    regions: string;
  }>;
}

interface ReconciliationTotals {
  reported: number;
  captured: number;
  uncaptured: number;
  overCaptured: number;
  driftPercent: number | null;
}

/**
 * "Captured vs reported by AWS": tokenwatch's Bedrock totals per hour beside what CloudWatch's
 * AWS/Bedrock metrics counted, from the stored reconciliation (`tokenwatch reconcile bedrock`
 * or the hourly job). Hidden where no reconciliation runs.
 */
export function reconciliationPanel(ctx: AppContext): RefreshablePanel {
  const panel = new Panel({
    id: 'reconciliation',
    title: 'Captured vs reported by AWS',
    subtitle: 'Bedrock tokens per hour: tokenwatch against CloudWatch AWS/Bedrock metrics',
    chartHeight: '220px',
    class: 'span-all',
  });
  panel.el.hidden = true;
  // The panel body holds the chart: the summary gets its own element above it.
  const summaryEl = h('div', { class: 'reconciliation-summary' });
  panel.body.prepend(summaryEl);
  const refresh = async () => {
    const r = rangeOf(ctx);
    let data: ReconciliationResponse;
    try {
      data = await ctx.api.request<ReconciliationResponse>('GET', '/v1/reconciliation', {
        params: new URLSearchParams({ from: String(r.aggFromMs), to: String(r.toMs) }),
      });
    } catch (err) {
      // This deployment keeps no reconciliation: nothing to show.
      if (err instanceof ApiError && err.status === 404) {
        panel.el.hidden = true;
        return;
      }
      throw err;
    }
    panel.el.hidden = data.hours.length === 0;
    clear(summaryEl);
    if (data.hours.length === 0) {
      panel.setStatus('empty');
      panel.setData(undefined);
      return;
    }
    const s = data.summary;
    summaryEl.appendChild(
      h(
        'p',
        {
          class: s.uncaptured > 0 ? 'warn-text' : 'muted',
          dataset: { uncaptured: String(s.uncaptured) },
        },
        `AWS reported ${formatTokens(s.reported)} tokens, tokenwatch captured ${formatTokens(s.captured)}: ` +
          (s.uncaptured > 0
            ? `${formatInteger(s.uncaptured)} tokens were not captured (${s.driftPercent ?? 0} %).`
            : 'nothing missing.') +
          (s.overCaptured > 0
            ? ` ${formatInteger(s.overCaptured)} captured tokens AWS did not report in these regions.`
            : ''),
      ),
    );
    const labels = data.hours.map((x) => formatDateTime(Date.parse(x.hour)));
    panel.chart?.set({
      animation: false,
      textStyle: { color: ctx.theme.text },
      tooltip: { trigger: 'axis' },
      legend: { textStyle: { color: ctx.theme.text } },
      grid: { left: 60, right: 16, top: 36, bottom: 28 },
      xAxis: {
        type: 'category',
        data: labels,
        axisLine: { lineStyle: { color: ctx.theme.axisLine } },
      },
      yAxis: { type: 'value', splitLine: { lineStyle: { color: ctx.theme.splitLine } } },
      series: [
        {
          name: 'Reported by AWS',
          type: 'bar',
          data: data.hours.map((x) => x.reported),
          itemStyle: { color: ctx.theme.series[1] ?? ctx.theme.other },
        },
        {
          name: 'Captured',
          type: 'bar',
          data: data.hours.map((x) => x.captured),
          itemStyle: { color: ctx.theme.series[0] ?? ctx.theme.other },
        },
      ],
    });
    const gaps = data.rows.filter((x) => x.difference !== 0);
    panel.setNote(
      gaps.length === 0
        ? undefined
        : `${gaps.length} model-hour${gaps.length === 1 ? '' : 's'} differ; unsettled hours may still change (metrics and logs arrive late).`,
    );
    panel.setStatus('ready');
    panel.setData({
      columns: [
        { key: 'hour', label: 'hour' },
        { key: 'model', label: 'model' },
        { key: 'metric', label: 'tokens' },
        { key: 'reported', label: 'reportedByAws' },
        { key: 'captured', label: 'captured' },
        { key: 'difference', label: 'difference' },
        { key: 'percent', label: 'percent' },
        { key: 'settled', label: 'settled' },
      ],
      rows: data.rows.map((x) => ({
        hour: x.hour,
        model: x.model,
        metric: x.metric,
        reported: x.reported,
        captured: x.captured,
        difference: x.difference,
        percent: x.percent,
        settled: x.settled ? 'yes' : 'no',
      })),
      fileParts: ['reconciliation', 'bedrock'],
    });
  };
  return { panel, refresh };
}
