import { h } from '../lib/html.js';
import type { ApiClient } from '../lib/usage-api.js';

/** Suggestions one search shows: enough to pick from, few enough to read. */
export const USER_SUGGESTIONS = 20;
/** Typing pauses this long before a search goes out (one request per pause, not per key). */
const DEBOUNCE_MS = 150;

/**
 * Fills a datalist with the users whose id starts with what is typed, from the server
 * (`GET /v1/users`): every user of the range is found, not only the top ones a panel has loaded.
 * The last keystroke wins: an older answer arriving late is dropped.
 */
export function attachUserSearch(
  input: HTMLInputElement,
  list: HTMLDataListElement,
  api: ApiClient,
  range: { fromMs: number; toMs: number },
): void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: AbortController | undefined;
  let shownFor = '';
  const run = (prefix: string) => {
    inFlight?.abort();
    const controller = new AbortController();
    inFlight = controller;
    input.dataset.searching = 'true';
    api
      .searchUsers({ prefix, limit: USER_SUGGESTIONS, ...range }, controller.signal)
      .then((res) => {
        if (controller.signal.aborted) return;
        list.replaceChildren(
          ...res.users.map((u) => h('option', { attrs: { value: u.user ?? '' } })),
        );
        shownFor = prefix;
        input.dataset.suggestionsFor = prefix;
        input.dataset.more = String(res.more);
      })
      .catch(() => {
        // Aborted by a newer search, or the server is away (the banner says so): keep the list.
      })
      .finally(() => {
        if (inFlight === controller) {
          inFlight = undefined;
          delete input.dataset.searching;
        }
      });
  };
  input.addEventListener('input', (ev) => {
    // Picking a suggestion is not a new search.
    if ((ev as InputEvent).inputType === 'insertReplacementText') return;
    const prefix = input.value.trim();
    clearTimeout(timer);
    if (prefix === '' || prefix === shownFor) return;
    timer = setTimeout(() => run(prefix), DEBOUNCE_MS);
  });
}
