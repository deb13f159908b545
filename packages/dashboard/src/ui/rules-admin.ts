import { clear, h } from '../lib/html.js';
import { emptyRuleForm, ruleFormOf, windowText } from '../lib/rule-form.js';
import { errorText } from '../lib/usage-api.js';
import type { AppContext } from '../views/context.js';
import { idText, scrollBox } from './id-text.js';
import { Panel } from './panel.js';
import { ruleEditor } from './rule-editor.js';
import type { RefreshablePanel } from './rules-panels.js';

type RuleJson = Record<string, unknown>;

const browserZone = () => Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';

function levelsText(rule: RuleJson): string {
  const levels = Array.isArray(rule.levels) ? (rule.levels as Record<string, unknown>[]) : [];
  return levels.map((l) => ('percent' in l ? `${l.percent}%` : String(l.value))).join(', ');
}

function scopeText(rule: RuleJson): string {
  const scope = Array.isArray(rule.scope) ? rule.scope.map(String) : [];
  const filters = Object.entries((rule.filters ?? {}) as Record<string, string[]>)
    .filter(([, v]) => Array.isArray(v) && v.length > 0)
    .map(([k, v]) => `${k}=${v.join('|')}`);
  return [scope.length > 0 ? `per ${scope.join(' × ')}` : 'whole project', ...filters].join(' · ');
}

/**
 * Rule management for admin keys: every rule (disabled ones too) with Edit, Enable/Disable and
 * Delete, and "New rule". Everything goes through the rules API, which checks the key's role
 * itself; the shell only shows this panel to admin keys.
 */
export function rulesAdminPanel(ctx: AppContext, onChanged: () => void): RefreshablePanel {
  const message = h('p', { class: 'form-error', attrs: { role: 'alert', hidden: true } });
  const formSlot = h('div', { class: 'rule-form-slot' });
  const listSlot = h('div');
  const newButton = h(
    'button',
    {
      class: 'btn btn-small btn-primary',
      attrs: { type: 'button' },
      dataset: { action: 'new-rule' },
      on: { click: () => openEditor(undefined) },
    },
    'New rule',
  );
  const panel = new Panel({
    id: 'rules-admin',
    title: 'Manage rules',
    subtitle: 'Create, edit, disable and delete threshold rules and budgets (admin key)',
    controls: [newButton],
    class: 'span-all',
  });
  panel.body.append(message, formSlot, listSlot);
  let shown = '';

  function openEditor(rule: RuleJson | undefined): void {
    clear(formSlot);
    const id = rule ? String(rule.id) : undefined;
    const form = ruleEditor({
      api: ctx.api,
      values: rule ? ruleFormOf(rule, browserZone()) : emptyRuleForm(browserZone()),
      ...(id ? { ruleId: id } : {}),
      onSaved: () => {
        clear(formSlot);
        void changed();
      },
      onCancel: () => clear(formSlot),
    });
    formSlot.appendChild(form);
    (form.querySelector('input[name="name"]') as HTMLInputElement).focus();
  }

  async function act(what: string, run: () => Promise<unknown>): Promise<void> {
    message.hidden = true;
    try {
      await run();
      await changed();
    } catch (err) {
      message.hidden = false;
      message.textContent = `Could not ${what}: ${errorText(err)}`;
    }
  }

  async function changed(): Promise<void> {
    await refresh();
    onChanged();
  }

  function row(rule: RuleJson): HTMLElement {
    const id = String(rule.id);
    const path = `/v1/rules/${encodeURIComponent(id)}`;
    const enabled = rule.enabled !== false;
    const del = h(
      'button',
      {
        class: 'btn btn-small',
        attrs: { type: 'button' },
        dataset: { action: 'delete-rule' },
        on: {
          click: () => {
            // A second click confirms: deleting drops the rule's alerts history link too.
            if (del.dataset.action === 'delete-rule') {
              del.dataset.action = 'confirm-delete';
              del.textContent = 'Confirm delete';
              del.classList.add('btn-danger');
              return;
            }
            void act('delete the rule', () => ctx.api.request('DELETE', path));
          },
        },
      },
      'Delete',
    );
    return h(
      'tr',
      { dataset: { ruleId: id, ruleName: String(rule.name ?? ''), enabled: String(enabled) } },
      h(
        'td',
        { class: 'name-cell' },
        h('div', { class: 'name-wrap' }, idText(String(rule.name ?? id))),
      ),
      h('td', { class: 'col-optional' }, scopeText(rule)),
      h('td', null, String(rule.metric ?? '')),
      h('td', { class: 'col-optional' }, windowText(rule)),
      h('td', { dataset: { cell: 'levels' } }, levelsText(rule)),
      h(
        'td',
        null,
        h(
          'span',
          { class: `badge ${enabled ? '' : 'badge-warn'}` },
          enabled ? 'enabled' : 'disabled',
        ),
        rule.enforce === true ? h('span', { class: 'badge' }, 'enforced') : null,
      ),
      h(
        'td',
        { class: 'row-actions' },
        h(
          'button',
          {
            class: 'btn btn-small',
            attrs: { type: 'button' },
            dataset: { action: 'edit-rule' },
            on: { click: () => openEditor(rule) },
          },
          'Edit',
        ),
        h(
          'button',
          {
            class: 'btn btn-small',
            attrs: { type: 'button' },
            dataset: { action: 'toggle-rule' },
            on: {
              click: () =>
                void act(enabled ? 'disable the rule' : 'enable the rule', () =>
                  ctx.api.request('POST', `${path}/${enabled ? 'disable' : 'enable'}`),
                ),
            },
          },
          enabled ? 'Disable' : 'Enable',
        ),
        del,
      ),
    );
  }

  async function refresh(): Promise<void> {
    let rules: RuleJson[];
    try {
      const res = await ctx.api.request<{ rules?: RuleJson[] }>('GET', '/v1/rules');
      rules = Array.isArray(res.rules) ? res.rules : [];
    } catch (err) {
      panel.setStatus('error', `Could not load rules: ${errorText(err)}`);
      return;
    }
    panel.setStatus(rules.length === 0 ? 'empty' : 'ready');
    // Redraw only on change, so a refresh never undoes a half-done "Confirm delete".
    const json = JSON.stringify(rules);
    if (json === shown) return;
    shown = json;
    clear(listSlot);
    if (rules.length === 0) {
      listSlot.appendChild(
        h('p', { class: 'muted empty-panel' }, 'No rules yet. "New rule" adds one.'),
      );
      return;
    }
    listSlot.appendChild(
      scrollBox(
        'Rules',
        h(
          'table',
          { class: 'data-table rules-table' },
          h(
            'thead',
            null,
            h(
              'tr',
              null,
              ...['Name', 'Scope', 'Metric', 'Window', 'Levels', 'State', ''].map((c, i) =>
                h(
                  'th',
                  { attrs: { scope: 'col' }, class: i === 1 || i === 3 ? 'col-optional' : '' },
                  c,
                ),
              ),
            ),
          ),
          h('tbody', null, ...rules.map(row)),
        ),
      ),
    );
  }

  return { panel, refresh };
}
