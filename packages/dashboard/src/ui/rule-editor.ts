import { h } from '../lib/html.js';
import {
  CALENDAR_UNITS,
  RULE_DIMENSIONS,
  RULE_METRICS,
  type RuleDimension,
  type RuleFormValues,
  ruleBody,
} from '../lib/rule-form.js';
import { type ApiClient, ApiError, errorText } from '../lib/usage-api.js';

/**
 * The form that creates or edits a rule (admin keys). It saves through the rules API and, when
 * the server refuses (400), shows the server's own message with every field it named.
 */
export function ruleEditor(opts: {
  api: ApiClient;
  values: RuleFormValues;
  /** Set when editing: PUT /v1/rules/:id; else POST /v1/rules. */
  ruleId?: string;
  onSaved(rule: Record<string, unknown>): void;
  onCancel(): void;
}): HTMLElement {
  const v = opts.values;
  const text = (name: string, label: string, value: string, hint?: string) =>
    field(label, h('input', { attrs: { type: 'text', name, value, autocomplete: 'off' } }), hint);
  const check = (name: string, label: string, checked: boolean) =>
    h(
      'label',
      { class: 'check' },
      h('input', { attrs: { type: 'checkbox', name, checked } }),
      ` ${label}`,
    );
  const select = (name: string, label: string, options: readonly string[], value: string) =>
    field(
      label,
      h(
        'select',
        { attrs: { name } },
        ...options.map((o) => h('option', { attrs: { value: o, selected: o === value } }, o)),
      ),
    );
  const error = h('div', { class: 'form-error', attrs: { role: 'alert', hidden: true } });
  const save = h(
    'button',
    { class: 'btn btn-primary', attrs: { type: 'submit' } },
    opts.ruleId ? 'Save rule' : 'Create rule',
  );

  const form = h(
    'form',
    {
      class: 'rule-form',
      attrs: { 'aria-label': opts.ruleId ? `Edit rule ${v.name}` : 'New rule', novalidate: true },
      dataset: { form: 'rule' },
      on: {
        submit: (ev) => {
          ev.preventDefault();
          void submit();
        },
      },
    },
    h('h3', null, opts.ruleId ? `Edit rule “${v.name}”` : 'New rule'),
    text('name', 'Name', v.name),
    h(
      'fieldset',
      null,
      h('legend', null, 'Scope: one alert per'),
      ...RULE_DIMENSIONS.map((d) => check(`scope-${d}`, d, v.scope.includes(d))),
      h('p', { class: 'muted hint' }, 'None checked: the whole project.'),
    ),
    h(
      'fieldset',
      null,
      h('legend', null, 'Only count (comma-separated; empty: all)'),
      ...RULE_DIMENSIONS.map((d) => text(`filter-${d}`, d, v.filters[d])),
    ),
    select('metric', 'Metric', RULE_METRICS, v.metric),
    h(
      'fieldset',
      null,
      h('legend', null, 'Window'),
      select('window-type', 'Type', ['calendar', 'rolling'], v.windowType),
      select('unit', 'Calendar unit', CALENDAR_UNITS, v.unit),
      text('time-zone', 'Time zone (IANA)', v.timeZone),
      text('minutes', 'Rolling minutes', v.minutes),
    ),
    text('budget', 'Budget', v.budget, 'Needed for percent levels; USD for cost.'),
    text('levels', 'Levels', v.levels, 'e.g. 50%, 80%, 100% of the budget, or 10000, 50000'),
    check('forecast', 'Also alert when the forecast reaches 100 %', v.forecast),
    h(
      'fieldset',
      null,
      h('legend', null, 'Channels'),
      check('channel-log', 'Server log', v.log),
      text('webhook-url', 'Webhook URL', v.webhookUrl),
      text('slack-url', 'Slack webhook URL', v.slackUrl),
      text('email-to', 'Email to (comma-separated)', v.emailTo),
    ),
    check('enforce', 'Enforce: POST /v1/check denies at 100 %', v.enforce),
    check('enabled', 'Enabled', v.enabled),
    error,
    h(
      'div',
      { class: 'toolbar' },
      save,
      h(
        'button',
        { class: 'btn', attrs: { type: 'button' }, on: { click: () => opts.onCancel() } },
        'Cancel',
      ),
    ),
  );

  const input = (name: string) => form.querySelector(`[name="${name}"]`) as HTMLInputElement;
  const valuesNow = (): RuleFormValues => ({
    ...v,
    name: input('name').value,
    scope: RULE_DIMENSIONS.filter((d) => input(`scope-${d}`).checked) as RuleDimension[],
    filters: Object.fromEntries(
      RULE_DIMENSIONS.map((d) => [d, input(`filter-${d}`).value]),
    ) as Record<RuleDimension, string>,
    metric: input('metric').value,
    windowType: input('window-type').value === 'rolling' ? 'rolling' : 'calendar',
    unit: input('unit').value,
    timeZone: input('time-zone').value,
    minutes: input('minutes').value,
    budget: input('budget').value,
    levels: input('levels').value,
    forecast: input('forecast').checked,
    log: input('channel-log').checked,
    webhookUrl: input('webhook-url').value,
    slackUrl: input('slack-url').value,
    emailTo: input('email-to').value,
    enforce: input('enforce').checked,
    enabled: input('enabled').checked,
  });

  async function submit(): Promise<void> {
    save.disabled = true;
    error.hidden = true;
    try {
      const body = ruleBody(valuesNow());
      const res = opts.ruleId
        ? await opts.api.request<{ rule: Record<string, unknown> }>(
            'PUT',
            `/v1/rules/${encodeURIComponent(opts.ruleId)}`,
            { body },
          )
        : await opts.api.request<{ rule: Record<string, unknown> }>('POST', '/v1/rules', { body });
      opts.onSaved(res.rule);
    } catch (err) {
      error.hidden = false;
      error.textContent =
        err instanceof ApiError && err.status === 400
          ? errorText(err)
          : `Could not save: ${errorText(err)}`;
      error.focus();
    } finally {
      save.disabled = false;
    }
  }
  error.tabIndex = -1;
  return form;
}

function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h(
    'label',
    { class: 'field form-field' },
    h('span', { class: 'field-label' }, label),
    control,
    hint ? h('span', { class: 'muted hint' }, hint) : null,
  );
}
