import { rulesAdminPanel } from '../ui/rules-admin.js';
import { alertsPanel, rulesPanel } from '../ui/rules-panels.js';
import type { ViewFactory } from './context.js';

/** Rules and budgets status, and the alerts feed; for admin keys also rule management. */
export const alertsView: ViewFactory = (root, ctx) => {
  const rules = rulesPanel(ctx);
  const alerts = alertsPanel(ctx, { limit: 100 });
  // Only admin keys may change rules (the server enforces it); others see no edit controls.
  const admin =
    ctx.who.role === 'admin' ? rulesAdminPanel(ctx, () => void rules.refresh()) : undefined;
  rules.panel.el.classList.add('span-all');
  alerts.panel.el.classList.add('span-all');
  root.append(alerts.panel.el, rules.panel.el);
  if (admin) root.append(admin.panel.el);
  return {
    refresh: async () => {
      await Promise.all([rules.refresh(), alerts.refresh(), admin?.refresh()]);
    },
    dispose() {
      rules.panel.dispose();
      alerts.panel.dispose();
      admin?.panel.dispose();
    },
  };
};
