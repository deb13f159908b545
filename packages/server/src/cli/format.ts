import { formatNanoUsd } from '@tokenwatch/core';

/** 1234 → "1.2k", 1_234_567 → "1.2M": readable token counts for terminals (≤ 3 significant digits). */
export function compactNumber(n: number): string {
  const abs = Math.abs(n);
  if (abs < 1000) return String(n);
  const units: Array<[number, string]> = [
    [1e3, 'k'],
    [1e6, 'M'],
    [1e9, 'B'],
    [1e12, 'T'],
  ];
  const sign = n < 0 ? '-' : '';
  for (let i = 0; i < units.length; i++) {
    const [size, suffix] = units[i] as [number, string];
    const scaled = abs / size;
    // Round first, then pick the unit: 999,950 reads "1.0M", not "1000k".
    const text = scaled.toFixed(scaled >= 99.95 ? 0 : 1);
    if (Number(text) < 1000 || i === units.length - 1) return `${sign}${text}${suffix}`;
  }
  return String(n);
}

/** Exact nano-USD → "$3,456.78" (cents, rounded half-up; "<$0.01" for tiny non-zero costs). */
export function formatUsd(nano: bigint): string {
  if (nano < 0n) return `-${formatUsd(-nano)}`;
  if (nano > 0n && nano < 5_000_000n) return '<$0.01';
  const cents = (nano + 5_000_000n) / 10_000_000n;
  const dollars = cents / 100n;
  const rest = (cents % 100n).toString().padStart(2, '0');
  return `$${dollars.toString().replace(/\B(?=(\d{3})+(?!\d))/g, ',')}.${rest}`;
}

export { formatNanoUsd };

export function table(headers: string[], rows: string[][], alignRight: boolean[]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) =>
        alignRight[i] ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number),
      )
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '─'.repeat(w))), ...rows.map(line)].join('\n');
}
