import { h } from '../lib/html.js';
import { ApiError, errorText } from '../lib/usage-api.js';

/** A labelled control with an optional hint under it. */
export function field(label: string, control: HTMLElement, hint?: string): HTMLElement {
  return h(
    'label',
    { class: 'field form-field' },
    h('span', { class: 'field-label' }, label),
    control,
    hint ? h('span', { class: 'muted hint' }, hint) : null,
  );
}

export function textInput(name: string, value = '', placeholder?: string): HTMLInputElement {
  return h('input', { attrs: { type: 'text', name, value, placeholder, autocomplete: 'off' } });
}

export function selectInput(
  name: string,
  options: readonly string[],
  value: string,
): HTMLSelectElement {
  return h(
    'select',
    { attrs: { name } },
    ...options.map((o) => h('option', { attrs: { value: o, selected: o === value } }, o)),
  );
}

/** Where a form shows the server's refusal (its own message and every field it named). */
export function formError(): {
  el: HTMLElement;
  show(err: unknown, action: string): void;
  hide(): void;
} {
  const el = h('p', { class: 'form-error', attrs: { role: 'alert', hidden: true, tabindex: -1 } });
  return {
    el,
    show(err, action) {
      el.hidden = false;
      el.textContent =
        err instanceof ApiError && err.status === 400
          ? errorText(err)
          : `Could not ${action}: ${errorText(err)}`;
    },
    hide() {
      el.hidden = true;
      el.textContent = '';
    },
  };
}

/** A small button that asks for a second click before it runs `run` (revoke, delete). */
export function confirmButton(
  label: string,
  confirmLabel: string,
  action: string,
  run: () => void,
): HTMLButtonElement {
  const button: HTMLButtonElement = h(
    'button',
    {
      class: 'btn btn-small',
      attrs: { type: 'button' },
      dataset: { action },
      on: {
        click: () => {
          if (button.dataset.action === action) {
            button.dataset.action = `confirm-${action}`;
            button.textContent = confirmLabel;
            button.classList.add('btn-danger');
            return;
          }
          run();
        },
      },
    },
    label,
  );
  return button;
}
