import { svg } from '../lib/html.js';

/** A tiny inline SVG area chart; its values are kept in `data-values` (tests, tooltips). */
export function sparkline(
  values: readonly number[],
  label: string,
  width = 120,
  height = 28,
): SVGSVGElement {
  const max = Math.max(0, ...values);
  const n = values.length;
  const x = (i: number) => (n <= 1 ? width / 2 : (i / (n - 1)) * (width - 2) + 1);
  const y = (v: number) => (max === 0 ? height - 1 : height - 1 - (v / max) * (height - 3));
  const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  const line = pts.length > 0 ? `M${pts.join(' L')}` : '';
  const area =
    pts.length > 0
      ? `${line} L${x(n - 1).toFixed(1)},${height} L${x(0).toFixed(1)},${height} Z`
      : '';
  const el = svg(
    'svg',
    {
      class: 'sparkline',
      width,
      height,
      viewBox: `0 0 ${width} ${height}`,
      role: 'img',
      preserveAspectRatio: 'none',
    },
    svg('path', { d: area, class: 'spark-area' }),
    svg('path', { d: line, class: 'spark-line' }),
  );
  el.setAttribute('aria-label', label);
  el.dataset.values = values.join(',');
  return el;
}
