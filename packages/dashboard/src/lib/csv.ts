/**
 * CSV of what a panel shows (RFC 4180, CRLF). Like the API's export, a text cell that a
 * spreadsheet would run as a formula (= + - @, tab, CR) is prefixed with a single quote: user,
 * app and model names come from callers.
 */
export interface CsvColumn {
  key: string;
  label: string;
}

export type CsvCell = string | number | null | undefined;

function cell(value: CsvCell): string {
  if (value === null || value === undefined) return '';
  let text = String(value);
  if (typeof value === 'string' && /^[=+\-@\t\r]/.test(text)) text = `'${text}`;
  return /[",\r\n']/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

export function toCsv(
  columns: readonly CsvColumn[],
  rows: readonly Record<string, CsvCell>[],
): string {
  const lines = [columns.map((c) => cell(c.label)).join(',')];
  for (const row of rows) lines.push(columns.map((c) => cell(row[c.key])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/**
 * Byte order mark the downloaded file starts with: Excel reads a CSV without it in the
 * system's legacy code page, and a user or model name past ASCII comes out garbled.
 */
export const UTF8_BOM = '\uFEFF';

/** Longest piece of a file name taken from one filter value (ids can be 190-char ARNs). */
const MAX_VALUE_CHARS = 40;
/** File names past ~255 bytes are refused by most file systems. */
const MAX_NAME_CHARS = 200;

function slug(text: string, max = Number.POSITIVE_INFINITY): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, max)
    .replace(/-$/, '');
}

/** What an export covers, for its file name: the range and the filters applied. */
export interface ExportScope {
  fromMs: number;
  toMs: number;
  filters?: {
    app: string[];
    model: string[];
    user: string[];
    tag?: { key: string; value: string } | undefined;
  };
}

/** `2026-01-06` at midnight UTC, else `2026-01-06T1400Z` (no ":", which Windows refuses). */
function stamp(ms: number): string {
  const iso = new Date(ms).toISOString();
  return ms % 86_400_000 === 0 ? iso.slice(0, 10) : `${iso.slice(0, 13)}${iso.slice(14, 16)}Z`;
}

/**
 * A file name like `tokenwatch-overview-tokens_2026-01-06T1400Z_2026-01-07T1400Z_app-chat.csv`:
 * what the panel shows, its range (UTC) and its filters, so two exports never look alike. Without
 * a scope (panels that do not depend on the range), the day of the export.
 */
export function csvFileName(parts: readonly string[], nowMs: number, scope?: ExportScope): string {
  const what = parts
    .map((p) => slug(p))
    .filter(Boolean)
    .join('-');
  if (!scope) return `tokenwatch-${what}-${new Date(nowMs).toISOString().slice(0, 10)}.csv`;
  const pieces = [`tokenwatch-${what}`, `${stamp(scope.fromMs)}_${stamp(scope.toMs)}`];
  const f = scope.filters;
  for (const dim of ['app', 'model', 'user'] as const) {
    const values = f?.[dim] ?? [];
    if (values.length > 0) {
      pieces.push(`${dim}-${values.map((v) => slug(v, MAX_VALUE_CHARS)).join('+')}`);
    }
  }
  if (f?.tag)
    pieces.push(`tag-${slug(f.tag.key, MAX_VALUE_CHARS)}-${slug(f.tag.value, MAX_VALUE_CHARS)}`);
  let name = pieces.join('_');
  if (name.length > MAX_NAME_CHARS) name = `${name.slice(0, MAX_NAME_CHARS - 1)}~`;
  return `${name}.csv`;
}
