import { h } from '../lib/html.js';

/**
 * A user id, model ARN or other name that can be very long: one line, cut with an ellipsis by
 * CSS (`.id-text`), the full id in its title (and its text, for copy, search and screen readers).
 */
export function idText(
  value: string,
  link?: { href: string; onClick: (ev: MouseEvent) => void },
): HTMLElement {
  return link
    ? h(
        'a',
        { class: 'id-text', attrs: { href: link.href, title: value }, on: { click: link.onClick } },
        value,
      )
    : h('span', { class: 'id-text', attrs: { title: value } }, value);
}

/** A table cell holding one long id (and optional badges after it), cut to the cell's width. */
export function idCell(value: string, ...after: (Node | null)[]): HTMLTableCellElement {
  return h('td', { class: 'name-cell' }, h('div', { class: 'name-wrap' }, idText(value), ...after));
}

/**
 * Wraps a table so a table too wide for a phone scrolls inside its panel, never the page. The box
 * is a named, focusable region: a keyboard user can reach it and scroll it with the arrow keys
 * (axe's "scrollable-region-focusable").
 */
export function scrollBox(label: string, table: HTMLElement): HTMLElement {
  return h(
    'div',
    { class: 'table-scroll', attrs: { tabindex: '0', role: 'region', 'aria-label': label } },
    table,
  );
}
