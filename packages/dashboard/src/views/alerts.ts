import { alertsPanel, rulesPanel } from '../ui/rules-panels.js';
import type { ViewFactory } from './context.js';

/** Rules and budgets status, and the alerts feed. */
export const alertsView: ViewFactory = (root, ctx) => {
  const rules = rulesPanel(ctx);
  const alerts = alertsPanel(ctx, { limit: 100 });
  rules.panel.el.classList.add('span-all');
  alerts.panel.el.classList.add('span-all');
  root.append(alerts.panel.el, rules.panel.el);
  return {
    refresh: async () => {
      await Promise.all([rules.refresh(), alerts.refresh()]);
    },
    dispose() {
      rules.panel.dispose();
      alerts.panel.dispose();
    },
  };
};
