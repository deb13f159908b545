/**
 * The only way the dashboard puts text into HTML. DOM nodes are built with `h()` (text becomes
 * text nodes, never markup); strings that must be HTML (chart tooltips) go through `escapeHtml`.
 */

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
  '`': '&#96;',
};

export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"'`]/g, (c) => ESCAPES[c] as string);
}

export type Child = Node | string | number | null | undefined | false;

export interface Props {
  class?: string;
  /** Attributes (set with setAttribute; never event-handler attributes). */
  attrs?: Record<string, string | number | boolean | undefined>;
  dataset?: Record<string, string>;
  on?: { [K in keyof HTMLElementEventMap]?: (ev: HTMLElementEventMap[K]) => void };
  style?: Partial<Record<string, string>>;
}

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props | null = null,
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props) {
    if (props.class) el.className = props.class;
    for (const [name, value] of Object.entries(props.attrs ?? {})) {
      if (value === undefined || value === false) continue;
      if (/^on/i.test(name)) throw new Error(`event-handler attribute ${name} is not allowed`);
      el.setAttribute(name, value === true ? '' : String(value));
    }
    for (const [k, v] of Object.entries(props.dataset ?? {})) el.dataset[k] = v;
    for (const [k, v] of Object.entries(props.style ?? {})) {
      if (v !== undefined) el.style.setProperty(k, v);
    }
    for (const [type, listener] of Object.entries(props.on ?? {})) {
      el.addEventListener(type, listener as EventListener);
    }
  }
  append(el, children);
  return el;
}

export function append(el: Node, children: readonly Child[]): void {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(
      typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c,
    );
  }
}

export function clear(el: Node): void {
  while (el.firstChild) el.removeChild(el.firstChild);
}

/** SVG element (sparklines). */
export function svg<K extends keyof SVGElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number> = {},
  ...children: SVGElement[]
): SVGElementTagNameMap[K] {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.appendChild(c);
  return el;
}
