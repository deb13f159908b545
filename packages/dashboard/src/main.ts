import './styles.css';
import './console.css';
import { THEMES, type ThemeName } from './charts/palette.js';
import { SeriesColors } from './charts/series-colors.js';
import { ServerWatch } from './lib/connection.js';
import { FailureRetry } from './lib/failure-retry.js';
import { timeZoneLabel } from './lib/format.js';
import { clear, h } from './lib/html.js';
import { type LiveStatus, LiveStream, liveUrl } from './lib/live.js';
import { RefreshScheduler } from './lib/refresh-scheduler.js';
import { type AlertItem, normaliseAlert } from './lib/rules.js';
import { formatLocation, parseLocation, type ViewState } from './lib/url-state.js';
import { ApiClient, ApiError, type WhoAmI } from './lib/usage-api.js';
import { renderEmptyState } from './ui/empty-state.js';
import { renderFilterBar } from './ui/filter-bar.js';
import { Freshness } from './ui/freshness.js';
import { renderSignIn } from './ui/sign-in.js';
import type { AppContext, ViewInstance } from './views/context.js';
import { NAV, VIEWS } from './views/registry.js';

const KEY_STORAGE = 'tokenwatch.key';
const THEME_STORAGE = 'tokenwatch.theme';
/** Presets move with the clock: redraw this often even when no usage arrives. */
const IDLE_REFRESH_MS = 60_000;
/** Without the live stream, poll this often. */
const POLL_MS = 15_000;

const appRoot = document.getElementById('app') as HTMLElement;

/** `#key=…` (the link `tokenwatch serve` prints) → session storage, and out of the URL and history. */
function takeKeyFromFragment(): void {
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (!m) return;
  try {
    sessionStorage.setItem(KEY_STORAGE, decodeURIComponent(m[1] as string));
  } catch {
    // storage disabled: the sign-in form will ask
  }
  history.replaceState(history.state, '', `${location.pathname}${location.search}`);
}

function preferredTheme(): ThemeName {
  const saved = localStorage.getItem(THEME_STORAGE);
  if (saved === 'light' || saved === 'dark') return saved;
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

async function boot(message?: string): Promise<void> {
  takeKeyFromFragment();
  document.documentElement.dataset.theme = preferredTheme();
  const key = sessionStorage.getItem(KEY_STORAGE);
  if (!key) {
    showSignIn(message);
    return;
  }
  const api = new ApiClient(location.origin, key);
  let who: WhoAmI;
  try {
    who = await api.whoami();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(KEY_STORAGE);
      showSignIn('That key is unknown or revoked.');
      return;
    }
    clear(appRoot);
    appRoot.appendChild(
      h(
        'p',
        { class: 'fatal' },
        `Cannot reach the server: ${err instanceof Error ? err.message : String(err)}`,
      ),
    );
    return;
  }
  if (who.role === 'ingest') {
    sessionStorage.removeItem(KEY_STORAGE);
    showSignIn(
      'That is an ingest key: it can send events but not read usage. Use an admin or read key.',
    );
    return;
  }
  startApp(api, who, key);
}

function showSignIn(message?: string): void {
  renderSignIn(appRoot, {
    ...(message ? { message } : {}),
    onKey: async (key) => {
      const api = new ApiClient(location.origin, key);
      try {
        const who = await api.whoami();
        if (who.role === 'ingest')
          return 'That is an ingest key: it can send events but not read usage.';
      } catch (err) {
        return err instanceof ApiError && err.status === 401
          ? 'Unknown or revoked key.'
          : `Cannot sign in: ${String(err)}`;
      }
      sessionStorage.setItem(KEY_STORAGE, key);
      await boot();
      return undefined;
    },
  });
}

function startApp(api: ApiClient, who: WhoAmI, key: string): void {
  let state: ViewState = parseLocation(location.pathname, location.search);
  let themeName = preferredTheme();
  let current: ViewInstance | undefined;
  let hasUsage = false;
  let showingEmpty = false;
  let refreshes = 0;
  const liveAlerts: AlertItem[] = [];
  const signOut = () => {
    watch.stop();
    live.stop();
    scheduler.stop();
    sessionStorage.removeItem(KEY_STORAGE);
    location.assign('/');
  };
  api.onUnauthorized = () => {
    sessionStorage.removeItem(KEY_STORAGE);
    watch.stop();
    live.stop();
    scheduler.stop();
    showSignIn('The key was revoked or is no longer valid.');
  };

  const fresh = new Freshness(POLL_MS / 1000);
  const watch = new ServerWatch(location.origin, (s, since) => {
    if (s === 'down') fresh.serverDown(since ?? Date.now());
    else {
      // Back: reconnect the live stream now and bring the view up to date.
      fresh.serverUp();
      live.reconnectNow();
      scheduler.request();
    }
  });
  api.onReachability = (reached) => (reached ? watch.reportSuccess() : watch.reportFailure());
  const themeButton = h(
    'button',
    {
      class: 'btn btn-small',
      attrs: { type: 'button', 'aria-label': 'Switch light / dark theme' },
      on: {
        click: () => {
          themeName = themeName === 'dark' ? 'light' : 'dark';
          localStorage.setItem(THEME_STORAGE, themeName);
          document.documentElement.dataset.theme = themeName;
          themeButton.textContent = themeName === 'dark' ? 'Light' : 'Dark';
          mount();
        },
      },
    },
    themeName === 'dark' ? 'Light' : 'Dark',
  );
  const nav = h('nav', { class: 'nav', attrs: { 'aria-label': 'Views' } });
  const filterBar = h('div', {
    class: 'filter-bar',
    attrs: { role: 'search', 'aria-label': 'Range and filters' },
  });
  const main = h('main', { class: 'view', attrs: { id: 'view', tabindex: '-1' } });
  clear(appRoot);
  appRoot.append(
    h('a', { class: 'skip-link', attrs: { href: '#view' } }, 'Skip to content'),
    h(
      'header',
      { class: 'topbar' },
      h(
        'a',
        {
          class: 'brand',
          attrs: { href: '/' },
          on: {
            click: (ev) => {
              ev.preventDefault();
              navigate({ ...state, view: 'overview', userId: undefined });
            },
          },
        },
        'tokenwatch',
      ),
      nav,
      h(
        'div',
        { class: 'topbar-right' },
        fresh.badge,
        fresh.updated,
        h(
          'span',
          {
            class: 'tz muted',
            attrs: {
              title:
                'Minute and hour buckets are shown in this time zone; day buckets are UTC days.',
            },
          },
          `Times: ${timeZoneLabel(Date.now())}`,
        ),
        h(
          'span',
          { class: 'role muted', attrs: { title: `project ${who.projectId}, key ${who.keyId}` } },
          `${who.role} key`,
        ),
        themeButton,
        h(
          'button',
          { class: 'btn btn-small', attrs: { type: 'button' }, on: { click: signOut } },
          'Sign out',
        ),
      ),
    ),
    fresh.banner,
    filterBar,
    main,
  );

  const ctx: AppContext = {
    api,
    who,
    get state() {
      return state;
    },
    get theme() {
      // Chart text follows the root font size (which grows on wall screens), 12 px on a laptop.
      const root = Number.parseFloat(getComputedStyle(document.documentElement).fontSize) || 16;
      return { ...THEMES[themeName], fontSize: Math.max(11, Math.round(root * 0.72)) };
    },
    seriesColors: new SeriesColors(THEMES.light.series.length),
    origin: location.origin,
    now: () => Date.now(),
    navigate,
    liveAlerts: () => liveAlerts,
  };

  function navigate(next: ViewState): void {
    const url = formatLocation(next);
    if (url !== `${location.pathname}${location.search}`) history.pushState(null, '', url);
    state = next;
    mount();
    main.focus({ preventScroll: true });
  }

  function renderNav(): void {
    clear(nav);
    for (const item of NAV) {
      if (item.adminOnly && who.role !== 'admin') continue;
      const target: ViewState = { ...state, view: item.view, userId: undefined };
      const active = state.view === item.view;
      nav.appendChild(
        h(
          'a',
          {
            class: `nav-link ${active ? 'active' : ''}`,
            attrs: { href: formatLocation(target), 'aria-current': active ? 'page' : undefined },
            on: {
              click: (ev) => {
                if (ev.button !== 0 || ev.metaKey || ev.ctrlKey || ev.shiftKey || ev.altKey) return;
                ev.preventDefault();
                navigate(target);
              },
            },
          },
          item.label,
        ),
      );
    }
  }

  /**
   * Whether the project has any usage at all (else the first-run guide shows). The last hour's
   * minute rollups answer cheaply for a busy project; only a quiet one asks the whole history.
   */
  async function checkUsage(): Promise<boolean> {
    if (hasUsage) return true;
    const none = { app: [], model: [], user: [], tag: undefined };
    const now = Date.now();
    const minute = now - (now % 60_000);
    const recent = await api.usage({
      fromMs: minute - 60 * 60_000,
      toMs: minute + 60_000,
      interval: 'minute',
      filters: none,
      limit: 1,
    });
    hasUsage = recent.rows.some((r) => r.requests > 0);
    if (hasUsage) return true;
    const all = await api.usage({
      fromMs: Date.UTC(2000, 0, 1),
      toMs: now - (now % 86_400_000) + 2 * 86_400_000,
      filters: none,
    });
    hasUsage = all.rows.some((r) => r.requests > 0);
    return hasUsage;
  }

  async function refreshCurrent(): Promise<void> {
    if (showingEmpty) {
      if (await checkUsage()) mount();
      return;
    }
    if (!current) return;
    const done = refreshStarts();
    await current.refresh();
    done();
  }

  /**
   * A view's refresh begins; call what this returns when it ended: it marks the view updated
   * when every request reached the server, and asks for a retry when one met a passing failure.
   */
  function refreshStarts(): () => void {
    const unreachable = api.unreachableCount;
    const failed = api.transientFailureCount;
    return () => {
      markUpdated(api.unreachableCount === unreachable);
      retry.settled(api.transientFailureCount !== failed);
    };
  }

  /** "updated HH:MM:SS" only when every request of the refresh reached the server. */
  function markUpdated(reachedServer: boolean): void {
    refreshes++;
    document.body.dataset.refreshes = String(refreshes);
    fresh.refreshed(reachedServer);
  }

  let mountSeq = 0;
  let mounting = false;
  function mount(): void {
    const seq = ++mountSeq;
    mounting = true;
    current?.dispose();
    current = undefined;
    clear(main);
    renderNav();
    renderFilterBar(filterBar, ctx);
    document.title = `${VIEWS[state.view].title}${state.view === 'user' ? ` ${state.userId ?? ''}` : ''} · tokenwatch`;
    main.dataset.view = state.view;
    const grid = h('div', { class: 'grid' });
    main.appendChild(grid);
    void (async () => {
      let any = true;
      try {
        any = await checkUsage();
      } catch {
        // show the view; its panels report the error
      }
      if (seq !== mountSeq) return;
      showingEmpty = !any;
      filterBar.hidden = showingEmpty;
      // Every view has one h1 (the user page and the first-run guide bring their own).
      if (!showingEmpty && state.view !== 'user') {
        main.insertBefore(h('h1', { class: 'view-title' }, VIEWS[state.view].heading), grid);
      }
      if (showingEmpty) {
        renderEmptyState(grid, ctx);
        document.body.dataset.refreshes = String(++refreshes);
        mounting = false;
        return;
      }
      current = VIEWS[state.view].factory(grid, ctx);
      const done = refreshStarts();
      await current.refresh();
      if (seq === mountSeq) {
        done();
        mounting = false;
      }
    })();
  }

  const scheduler = new RefreshScheduler(refreshCurrent);
  // A panel whose load met a 429, a 5xx or a network error is loaded again after a backoff,
  // not only at the next live notice or the minute's refresh.
  const retry = new FailureRetry(() => scheduler.request());
  let liveStatus: LiveStatus = 'connecting';
  const live = new LiveStream(liveUrl(location.origin, key), {
    onUsage: () => scheduler.request(),
    onAlert: (n) => {
      const a = normaliseAlert(n.alert);
      if (a) liveAlerts.unshift(a);
      liveAlerts.splice(200);
      scheduler.request();
    },
    onStatus: (s) => {
      const was = liveStatus;
      liveStatus = s;
      fresh.setLive(s);
      // The stream dropped: refresh now, which also finds out whether the server is away.
      if (s === 'reconnecting' && was === 'live') scheduler.request();
      // (Re)connected after a gap: catch up on what was missed meanwhile.
      if (s === 'live' && was !== 'connecting') scheduler.request();
    },
  });
  live.start();
  setInterval(() => {
    if (liveStatus !== 'live') scheduler.request();
  }, POLL_MS);
  setInterval(() => scheduler.request(), IDLE_REFRESH_MS);
  // "Everything shown is up to date": for tests and for screenshots of a settled wall screen.
  setInterval(() => {
    document.body.dataset.idle = String(!mounting && scheduler.isIdle());
  }, 100);
  window.addEventListener('popstate', () => {
    state = parseLocation(location.pathname, location.search);
    mount();
  });
  mount();
}

void boot();
