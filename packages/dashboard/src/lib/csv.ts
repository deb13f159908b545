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

/** A file name like `tokenwatch-overview-tokens-2026-01-06.csv` (safe characters only). */
export function csvFileName(parts: readonly string[], nowMs: number): string {
  const day = new Date(nowMs).toISOString().slice(0, 10);
  const slug = parts
    .map((p) =>
      p
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, ''),
    )
    .filter(Boolean)
    .join('-');
  return `tokenwatch-${slug}-${day}.csv`;
}
