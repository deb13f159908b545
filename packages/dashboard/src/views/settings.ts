import { h } from '../lib/html.js';
import { keysAdminPanel } from '../ui/keys-admin.js';
import { pricesAdminPanel } from '../ui/prices-admin.js';
import { guard, type ViewFactory } from './context.js';

/** API keys and price overrides: admin keys only (the server refuses other keys anyway). */
export const settingsView: ViewFactory = (root, ctx) => {
  if (ctx.who.role !== 'admin') {
    root.appendChild(
      h(
        'div',
        { class: 'notice notice-info span-all', dataset: { state: 'admin-only' } },
        h('strong', null, 'Needs an admin key'),
        h('p', null, 'API keys and price overrides are managed with an admin key.'),
      ),
    );
    return { refresh: async () => {}, dispose() {} };
  }
  const keys = keysAdminPanel(ctx);
  const prices = pricesAdminPanel(ctx);
  root.append(keys.panel.el, prices.panel.el);
  return {
    refresh: async () => {
      await Promise.all([guard(keys.panel, keys.refresh), guard(prices.panel, prices.refresh)]);
    },
    dispose() {
      keys.panel.dispose();
      prices.panel.dispose();
    },
  };
};
