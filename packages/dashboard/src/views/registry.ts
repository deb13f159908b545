import type { ViewId } from '../lib/url-state.js';
import { alertsView } from './alerts.js';
import { breakdownView } from './breakdown.js';
import type { ViewFactory } from './context.js';
import { overviewView } from './overview.js';
import { settingsView } from './settings.js';
import { topView } from './top.js';
import { userView } from './user.js';

/** Every view: how to build it, its document title and its h1. */
export const VIEWS: Record<ViewId, { factory: ViewFactory; title: string; heading: string }> = {
  overview: { factory: overviewView, title: 'Overview', heading: 'Overview' },
  breakdown: { factory: breakdownView, title: 'Breakdown', heading: 'Apps, models and users' },
  top: { factory: topView, title: 'Top', heading: 'Top users, apps and models' },
  user: { factory: userView, title: 'User', heading: 'User' },
  alerts: { factory: alertsView, title: 'Alerts', heading: 'Alerts and budgets' },
  settings: { factory: settingsView, title: 'Keys and prices', heading: 'API keys and prices' },
};

/** The navigation; `adminOnly` items show for admin keys only. */
export const NAV: { view: ViewId; label: string; adminOnly?: boolean }[] = [
  { view: 'overview', label: 'Overview' },
  { view: 'breakdown', label: 'Apps, models, users' },
  { view: 'top', label: 'Top lists' },
  { view: 'alerts', label: 'Alerts & budgets' },
  { view: 'settings', label: 'Keys & prices', adminOnly: true },
];
