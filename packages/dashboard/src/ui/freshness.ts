import { h } from '../lib/html.js';
import type { LiveStatus } from '../lib/live.js';

const clock = (ms: number) => new Date(ms).toLocaleTimeString('en-US', { hourCycle: 'h23' });

/**
 * How fresh what is on screen is: the live badge, "updated HH:MM:SS" (the time of the last
 * refresh that reached the server — it never ticks on while the server is away, it turns into a
 * "stale" marker), and an outage banner while the server cannot be reached.
 */
export class Freshness {
  readonly badge: HTMLElement;
  readonly updated: HTMLElement;
  readonly banner: HTMLElement;
  private lastOkMs: number | undefined;
  private downSinceMs: number | undefined;

  constructor(private readonly pollSeconds: number) {
    this.badge = h(
      'span',
      { class: 'live live-connecting', attrs: { role: 'status' } },
      'Connecting…',
    );
    this.updated = h('span', { class: 'updated muted', dataset: { stale: 'false' } });
    this.banner = h('div', {
      class: 'outage',
      attrs: { role: 'alert', hidden: true },
      dataset: { state: 'outage' },
    });
  }

  setLive(s: LiveStatus): void {
    this.badge.className = `live live-${this.downSinceMs !== undefined ? 'reconnecting' : s}`;
    this.badge.textContent = {
      connecting: 'Connecting…',
      live: 'Live',
      reconnecting: 'Reconnecting…',
      offline: 'Polling',
    }[s];
    this.badge.title =
      s === 'live'
        ? 'New usage appears as it is counted'
        : s === 'offline'
          ? `No live stream; refreshing every ${this.pollSeconds} s`
          : 'The live stream is reconnecting';
  }

  /** A refresh finished; `reachedServer` is false when any of its requests could not reach it. */
  refreshed(reachedServer: boolean): void {
    if (reachedServer && this.downSinceMs === undefined) {
      this.lastOkMs = Date.now();
      this.updated.textContent = `updated ${clock(this.lastOkMs)}`;
      this.updated.dataset.stale = 'false';
      this.updated.classList.remove('stale');
      return;
    }
    this.markStale();
  }

  serverDown(sinceMs: number): void {
    this.downSinceMs = sinceMs;
    this.banner.hidden = false;
    this.banner.textContent = `Cannot reach the tokenwatch server since ${clock(sinceMs)}. ${
      this.lastOkMs !== undefined
        ? `The figures below are from ${clock(this.lastOkMs)} and`
        : 'Figures'
    } are not updating. Retrying…`;
    this.badge.className = 'live live-reconnecting';
    this.markStale();
  }

  serverUp(): void {
    this.downSinceMs = undefined;
    this.banner.hidden = true;
    this.banner.textContent = '';
  }

  private markStale(): void {
    this.updated.dataset.stale = 'true';
    this.updated.classList.add('stale');
    this.updated.textContent =
      this.lastOkMs !== undefined ? `stale · data from ${clock(this.lastOkMs)}` : 'stale';
    this.updated.title = 'The server could not be reached; these figures are not current.';
  }
}
