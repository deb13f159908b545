import { clear, h } from '../lib/html.js';

/** The sign-in form: an admin or read key, kept in this tab's session storage only. */
export function renderSignIn(
  root: HTMLElement,
  opts: { message?: string; onKey: (key: string) => Promise<string | undefined> },
): void {
  clear(root);
  const input = h('input', {
    attrs: {
      type: 'password',
      name: 'key',
      autocomplete: 'off',
      spellcheck: 'false',
      placeholder: 'twk_…',
      required: true,
      'aria-describedby': 'signin-help',
    },
  });
  const error = h('p', { class: 'signin-error', attrs: { role: 'alert' } }, opts.message ?? '');
  const form = h(
    'form',
    {
      class: 'signin',
      on: {
        submit: (ev) => {
          ev.preventDefault();
          error.textContent = '';
          const key = input.value.trim();
          if (!key) return;
          void opts.onKey(key).then((problem) => {
            if (problem) error.textContent = problem;
          });
        },
      },
    },
    h('h1', null, 'tokenwatch'),
    h('p', null, 'Sign in with an admin or read-only API key.'),
    h(
      'label',
      { class: 'field field-block' },
      h('span', { class: 'field-label' }, 'API key'),
      input,
    ),
    h('button', { class: 'btn btn-primary', attrs: { type: 'submit' } }, 'Sign in'),
    error,
    h(
      'p',
      { class: 'muted', attrs: { id: 'signin-help' } },
      'The key stays in this browser tab (session storage) and is sent only to this server. ',
      'On its first start, `tokenwatch serve` prints a dashboard link that signs in directly; ',
      'create a read-only key with `tokenwatch keys create --role read`.',
    ),
  );
  root.appendChild(h('main', { class: 'signin-page' }, form));
  input.focus();
}
