import { formatDateTime, formatDuration, formatInteger, formatUsd } from '../lib/format.js';
import { clear, h } from '../lib/html.js';
import {
  type AlertItem,
  type Loaded,
  loadAlerts,
  loadRuleStatuses,
  progressOf,
  type RuleStatus,
} from '../lib/rules.js';
import { errorText } from '../lib/usage-api.js';
import type { AppContext } from '../views/context.js';
import { Panel } from './panel.js';

/** USD for cost rules; whole numbers for tokens and requests (a forecast is rounded). */
function metricValue(metric: string, v: number): string {
  if (/cost|usd/i.test(metric)) return formatUsd(v);
  return formatInteger(Math.round(v));
}

function unavailable(el: HTMLElement, message: string, what: string): void {
  el.appendChild(
    h(
      'div',
      { class: 'notice notice-info', dataset: { state: 'unavailable' } },
      h('strong', null, 'No rules API on this server yet'),
      h('p', null, message),
      h(
        'p',
        { class: 'muted' },
        `Threshold rules, budgets and alerts come with the alerting release. This panel will then show ${what}.`,
      ),
    ),
  );
}

export interface RefreshablePanel {
  panel: Panel;
  refresh(): Promise<void>;
}

/** Rules and budgets: progress to each level, forecast to the window's end, time to reset. */
export function rulesPanel(
  ctx: AppContext,
  opts: { user?: string; limit?: number } = {},
): RefreshablePanel {
  const panel = new Panel({
    id: opts.user ? 'user-rules' : 'rules',
    title: opts.user ? 'Rules and budgets for this user' : 'Rules and budgets',
    subtitle: 'Progress to each level, forecast, time to reset',
  });
  const refresh = async () => {
    const loaded: Loaded<RuleStatus> = await loadRuleStatuses(ctx.api, opts.user);
    clear(panel.body);
    panel.setData(undefined);
    if (loaded.state === 'unavailable') {
      panel.setStatus('empty');
      unavailable(
        panel.body,
        loaded.message,
        'every rule with a progress bar to each level, the forecast for the window and when it resets',
      );
      return;
    }
    if (loaded.state === 'error') {
      panel.setStatus('error', `Could not load rules: ${loaded.message}`);
      return;
    }
    const items = loaded.items.slice(0, opts.limit ?? 200);
    panel.setStatus(items.length === 0 ? 'empty' : 'ready');
    if (items.length === 0) {
      panel.body.appendChild(h('p', { class: 'muted empty-panel' }, 'No rules yet.'));
      return;
    }
    const now = ctx.now();
    panel.body.appendChild(h('ul', { class: 'rule-list' }, ...items.map((s) => ruleItem(s, now))));
    panel.setData({
      columns: [
        { key: 'rule', label: 'rule' },
        { key: 'scope', label: 'scope' },
        { key: 'metric', label: 'metric' },
        { key: 'value', label: 'value' },
        { key: 'levels', label: 'levels' },
      ],
      rows: items.map((s) => ({
        rule: s.ruleName,
        scope: s.scope,
        metric: s.metric,
        value: s.value,
        levels: s.levels.map((l) => l.threshold).join(' '),
      })),
      fileParts: ['rules'],
    });
  };
  return { panel, refresh };
}

function ruleItem(s: RuleStatus, nowMs: number): HTMLElement {
  const p = progressOf(s, nowMs);
  const top = s.levels[s.levels.length - 1]?.threshold ?? 0;
  const scale = Math.max(top, s.value, p.forecast ?? 0) || 1;
  const bar = h(
    'div',
    {
      class: 'progress',
      attrs: {
        role: 'progressbar',
        'aria-valuemin': 0,
        'aria-valuemax': top,
        'aria-valuenow': s.value,
        'aria-label': `${s.ruleName} ${s.scope}`,
      },
    },
    h('div', {
      class: 'progress-fill',
      style: { width: `${Math.min(100, (s.value / scale) * 100)}%` },
    }),
    p.forecast !== undefined
      ? h('div', {
          class: 'progress-forecast',
          style: { width: `${Math.min(100, (p.forecast / scale) * 100)}%` },
        })
      : null,
    ...s.levels.map((l) =>
      h('div', {
        class: `progress-level ${s.value >= l.threshold ? 'crossed' : ''}`,
        style: { left: `${Math.min(100, (l.threshold / scale) * 100)}%` },
        attrs: { title: `${l.label}: ${metricValue(s.metric, l.threshold)}` },
      }),
    ),
  );
  return h(
    'li',
    { class: 'rule' },
    h(
      'div',
      { class: 'rule-head' },
      h('strong', null, s.ruleName),
      h('span', { class: 'muted id-text rule-scope', attrs: { title: s.scope } }, s.scope),
      h('span', { class: 'rule-value' }, metricValue(s.metric, s.value)),
    ),
    bar,
    h(
      'div',
      { class: 'rule-meta muted' },
      s.levels
        .map((l, i) => {
          const name = l.label === String(l.threshold) ? 'level' : l.label;
          const level = `${name} ${metricValue(s.metric, l.threshold)}`;
          return s.value >= l.threshold
            ? `${level} ✓ crossed`
            : `${level}: ${Math.round((p.fractions[i] ?? 0) * 100)}%`;
        })
        .join(' · '),
      p.forecast !== undefined ? ` · forecast ${metricValue(s.metric, p.forecast)}` : '',
      p.forecastCrosses ? ` (crosses ${p.forecastCrosses.label})` : '',
      p.resetInMs !== undefined
        ? ` · resets in ${formatDuration(p.resetInMs)}`
        : s.rolling
          ? ' · rolling window'
          : '',
    ),
  );
}

/** The alerts feed: newest first, with the alerts heard live since the page opened on top. */
export function alertsPanel(
  ctx: AppContext,
  opts: { user?: string; limit?: number } = {},
): RefreshablePanel {
  const limit = opts.limit ?? 50;
  const panel = new Panel({
    id: opts.user ? 'user-alerts' : 'alerts',
    title: opts.user ? 'Alerts for this user' : 'Alerts',
    subtitle: 'Newest first; new ones appear live',
  });
  const refresh = async () => {
    const loaded: Loaded<AlertItem> = await loadAlerts(ctx.api, limit, opts.user);
    const live = ctx.liveAlerts().filter((a) => !opts.user || a.scopeValues.user === opts.user);
    clear(panel.body);
    if (loaded.state === 'unavailable' && live.length === 0) {
      panel.setStatus('empty');
      panel.setData(undefined);
      unavailable(
        panel.body,
        loaded.message,
        'every alert as it fires (rule, scope, level, value, window)',
      );
      return;
    }
    if (loaded.state === 'error')
      panel.setStatus('error', `Could not load alerts: ${loaded.message}`);
    const seen = new Set<string>();
    const items = [...live, ...(loaded.state === 'ok' ? loaded.items : [])]
      .filter((a) => {
        if (seen.has(a.id)) return false;
        seen.add(a.id);
        return true;
      })
      .sort((a, b) => b.firedAtMs - a.firedAtMs)
      .slice(0, limit);
    if (loaded.state !== 'error') panel.setStatus(items.length === 0 ? 'empty' : 'ready');
    if (items.length === 0) {
      panel.body.appendChild(h('p', { class: 'muted empty-panel' }, 'No alerts.'));
      panel.setData(undefined);
      return;
    }
    panel.body.appendChild(
      h(
        'ol',
        { class: 'alert-list', attrs: { 'aria-live': 'polite' } },
        ...items.map((a) =>
          h(
            'li',
            { class: 'alert-item', dataset: { alertId: a.id } },
            h(
              'time',
              { attrs: { datetime: new Date(a.firedAtMs).toISOString() } },
              formatDateTime(a.firedAtMs),
            ),
            h('span', { class: 'badge badge-warn' }, a.level || 'alert'),
            h('strong', null, a.ruleName),
            h('span', { class: 'muted id-text alert-scope', attrs: { title: a.scope } }, a.scope),
            a.value !== undefined
              ? h(
                  'span',
                  { class: 'alert-value' },
                  metricValue(a.metric, a.value),
                  a.threshold !== undefined ? ` ≥ ${metricValue(a.metric, a.threshold)}` : '',
                )
              : null,
            ackControl(ctx, a),
          ),
        ),
      ),
    );
    panel.setData({
      columns: [
        { key: 'firedAt', label: 'firedAt' },
        { key: 'rule', label: 'rule' },
        { key: 'scope', label: 'scope' },
        { key: 'level', label: 'level' },
        { key: 'value', label: 'value' },
        { key: 'threshold', label: 'threshold' },
      ],
      rows: items.map((a) => ({
        firedAt: new Date(a.firedAtMs).toISOString(),
        rule: a.ruleName,
        scope: a.scope,
        level: a.level,
        value: a.value,
        threshold: a.threshold,
      })),
      fileParts: ['alerts'],
    });
  };
  return { panel, refresh };
}

/** "Acknowledge" for admin keys (the server refuses other keys anyway); a badge once done. */
function ackControl(ctx: AppContext, a: AlertItem): HTMLElement | null {
  if (a.acknowledged)
    return h('span', { class: 'badge', dataset: { state: 'acknowledged' } }, 'acknowledged');
  if (ctx.who.role !== 'admin') return null;
  const button: HTMLButtonElement = h(
    'button',
    {
      class: 'btn btn-small',
      attrs: { type: 'button', 'aria-label': `Acknowledge alert ${a.ruleName} ${a.scope}` },
      dataset: { action: 'ack' },
      on: {
        click: async () => {
          button.disabled = true;
          try {
            await ctx.api.request('POST', `/v1/alerts/${encodeURIComponent(a.id)}/ack`);
            a.acknowledged = true;
            button.replaceWith(
              h('span', { class: 'badge', dataset: { state: 'acknowledged' } }, 'acknowledged'),
            );
          } catch (err) {
            button.disabled = false;
            button.title = `Could not acknowledge: ${errorText(err)}`;
            button.textContent = 'Retry acknowledge';
          }
        },
      },
    },
    'Acknowledge',
  );
  return button;
}
