import { clear, h } from '../lib/html.js';
import type { AppContext } from '../views/context.js';
import { confirmButton, field, formError, selectInput, textInput } from './form-bits.js';
import { idText, scrollBox } from './id-text.js';
import { Panel } from './panel.js';
import type { RefreshablePanel } from './rules-panels.js';

interface KeyJson {
  id: string;
  prefix?: string;
  role: string;
  appId: string | null;
  name: string | null;
  createdAt: string;
  revokedAt: string | null;
}

/**
 * API keys (admin keys only): list, create (the key is shown once, here), revoke. The key the
 * page is signed in with cannot be revoked from here (that would sign this page out).
 */
export function keysAdminPanel(ctx: AppContext): RefreshablePanel {
  const panel = new Panel({
    id: 'keys-admin',
    title: 'API keys',
    subtitle: 'Ingest keys send usage, read keys see it, admin keys manage everything',
    class: 'span-all',
  });
  const error = formError();
  const created = h('div', {
    class: 'created-key',
    attrs: { hidden: true, 'aria-live': 'polite' },
  });
  const role = selectInput('key-role', ['ingest', 'read', 'admin'], 'ingest');
  const appId = textInput('key-app', '', 'any app');
  const name = textInput('key-name', '', 'e.g. chat backend');
  const form = h(
    'form',
    {
      class: 'inline-form',
      dataset: { form: 'key' },
      attrs: { 'aria-label': 'Create an API key' },
      on: {
        submit: (ev) => {
          ev.preventDefault();
          void create();
        },
      },
    },
    field('Role', role),
    field('Bound to app (ingest only)', appId),
    field('Name', name),
    h('button', { class: 'btn btn-primary', attrs: { type: 'submit' } }, 'Create key'),
    error.el,
  );
  const list = h('div');
  panel.body.append(form, created, list);

  async function create(): Promise<void> {
    error.hide();
    const body: Record<string, string> = { role: role.value };
    if (appId.value.trim()) body.appId = appId.value.trim();
    if (name.value.trim()) body.name = name.value.trim();
    try {
      const res = await ctx.api.request<{ id: string; key: string; role: string }>(
        'POST',
        '/v1/keys',
        { body },
      );
      clear(created);
      created.hidden = false;
      created.append(
        h('strong', null, `New ${res.role} key — copy it now, it is shown only once:`),
        h('code', { class: 'snippet', dataset: { secret: 'key' } }, res.key),
        h(
          'button',
          {
            class: 'btn btn-small',
            attrs: { type: 'button' },
            on: { click: () => void navigator.clipboard?.writeText(res.key) },
          },
          'Copy',
        ),
        h(
          'button',
          {
            class: 'btn btn-small',
            attrs: { type: 'button' },
            on: {
              click: () => {
                clear(created);
                created.hidden = true;
              },
            },
          },
          'Done',
        ),
      );
      appId.value = '';
      name.value = '';
      await refresh();
    } catch (err) {
      error.show(err, 'create the key');
    }
  }

  async function revoke(id: string): Promise<void> {
    error.hide();
    try {
      await ctx.api.request('DELETE', `/v1/keys/${encodeURIComponent(id)}`);
      await refresh();
    } catch (err) {
      error.show(err, 'revoke the key');
    }
  }

  async function refresh(): Promise<void> {
    const res = await ctx.api.request<{ keys: KeyJson[] }>('GET', '/v1/keys');
    const keys = res.keys ?? [];
    panel.setStatus(keys.length === 0 ? 'empty' : 'ready');
    clear(list);
    list.appendChild(
      scrollBox(
        'API keys',
        h(
          'table',
          { class: 'data-table' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ...['Name', 'Role', 'App', 'Key', 'Created', 'State'].map((c) =>
                h('th', { attrs: { scope: 'col' } }, c),
              ),
            ),
          ),
          h(
            'tbody',
            null,
            ...keys.map((k) => {
              const own = k.id === ctx.who.keyId;
              return h(
                'tr',
                { dataset: { keyId: k.id, revoked: String(k.revokedAt !== null) } },
                h(
                  'td',
                  { class: 'name-cell' },
                  h('div', { class: 'name-wrap' }, idText(k.name ?? '—')),
                ),
                h('td', null, k.role),
                h('td', null, k.appId ?? ''),
                h('td', null, h('code', null, `${k.prefix ?? k.id}…`)),
                h('td', null, k.createdAt.slice(0, 10)),
                h(
                  'td',
                  null,
                  k.revokedAt
                    ? h('span', { class: 'badge badge-warn' }, 'revoked')
                    : own
                      ? h(
                          'span',
                          {
                            class: 'badge',
                            attrs: { title: 'The key this page is signed in with' },
                          },
                          'this page',
                        )
                      : confirmButton(
                          'Revoke',
                          'Confirm revoke',
                          'revoke-key',
                          () => void revoke(k.id),
                        ),
                ),
              );
            }),
          ),
        ),
      ),
    );
  }

  return { panel, refresh };
}
