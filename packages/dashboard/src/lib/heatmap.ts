import { displayValue, exactValue, type Metric, rankKeys } from './aggregate.js';
import type { UsageRow } from './usage-api.js';

export interface Heatmap {
  /** x categories: the top apps, then the "other apps" column when there is a remainder. */
  apps: string[];
  /** y categories: the top users, then the "other users" row when there is a remainder. */
  users: string[];
  otherUsers: boolean;
  otherApps: boolean;
  /** [appIndex, userIndex, value]; zero cells omitted. */
  cells: [number, number, number][];
}

/**
 * Application × user heat map with the top users and the top apps only: the top users' cells
 * come from a query grouped by app and user filtered to those users; the "other users" row is
 * each app's total (a query grouped by app) minus the top users' cells in it; apps past
 * `maxApps` add up in one "other apps" column. So 10k users and 200 apps stay readable and
 * nothing is lost: every row and column still sums to the API's totals.
 */
export function appUserHeatmap(options: {
  topUsers: readonly string[];
  cellRows: readonly UsageRow[];
  appTotals: readonly UsageRow[];
  metric: Metric;
  otherName: string;
  maxApps: number;
  otherAppsName: string;
}): Heatmap {
  const { topUsers, cellRows, appTotals, metric } = options;
  const ranked = rankKeys(appTotals, (r) => r.app, metric);
  const otherApps = ranked.length > options.maxApps;
  const apps = ranked.slice(0, options.maxApps);
  const otherAppIndex = apps.length;
  const aIndex = new Map(apps.map((a, i) => [a, i]));
  const columnOf = (app: string | undefined): number | undefined =>
    app === undefined ? undefined : (aIndex.get(app) ?? (otherApps ? otherAppIndex : undefined));
  const uIndex = new Map(topUsers.map((u, i) => [u, i]));
  const cell = new Map<string, bigint>();
  const columns = otherApps ? apps.length + 1 : apps.length;
  const topPerColumn = Array.from({ length: columns }, () => 0n);
  const totalPerColumn = Array.from({ length: columns }, () => 0n);
  for (const r of cellRows) {
    const ai = columnOf(r.app);
    const ui = r.user === undefined ? undefined : uIndex.get(r.user);
    if (ai === undefined || ui === undefined) continue;
    const v = exactValue(r, metric);
    cell.set(`${ai},${ui}`, (cell.get(`${ai},${ui}`) ?? 0n) + v);
    topPerColumn[ai] = (topPerColumn[ai] as bigint) + v;
  }
  for (const r of appTotals) {
    const ai = columnOf(r.app);
    if (ai !== undefined)
      totalPerColumn[ai] = (totalPerColumn[ai] as bigint) + exactValue(r, metric);
  }
  const cells: [number, number, number][] = [];
  for (const [k, v] of cell) {
    if (v === 0n) continue;
    const [ai, ui] = k.split(',').map(Number) as [number, number];
    cells.push([ai, ui, displayValue(v, metric)]);
  }
  let otherUsers = false;
  const otherIndex = topUsers.length;
  for (let ai = 0; ai < columns; ai++) {
    const rest = (totalPerColumn[ai] as bigint) - (topPerColumn[ai] as bigint);
    if (rest !== 0n) {
      otherUsers = true;
      cells.push([ai, otherIndex, displayValue(rest, metric)]);
    }
  }
  cells.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  return {
    apps: otherApps ? [...apps, options.otherAppsName] : apps,
    users: otherUsers ? [...topUsers, options.otherName] : [...topUsers],
    otherUsers,
    otherApps,
    cells,
  };
}

/**
 * The top of the heat map's colour scale: the largest cell of a named user and a named app.
 * The "other" row and column add up many users or apps and would wash every named cell out to
 * the palest colour; they clamp to the darkest instead (their value is in the tooltip).
 */
export function heatmapScaleMax(hm: Heatmap): number {
  const otherRow = hm.otherUsers ? hm.users.length - 1 : -1;
  const otherCol = hm.otherApps ? hm.apps.length - 1 : -1;
  const named = hm.cells.filter((c) => c[1] !== otherRow && c[0] !== otherCol).map((c) => c[2]);
  return Math.max(1e-9, ...(named.length > 0 ? named : hm.cells.map((c) => c[2])));
}
