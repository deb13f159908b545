import { describe, expect, it } from 'vitest';
import { compactNumber, formatNanoUsd, formatUsd, table } from './format.js';

describe('compactNumber', () => {
  it.each([
    [0, '0'],
    [7, '7'],
    [999, '999'],
    [1000, '1.0k'],
    [1234, '1.2k'],
    [12_345, '12.3k'],
    [123_456, '123k'],
    [1_234_567, '1.2M'],
    [45_600_000, '45.6M'],
    [1_000_000_000, '1.0B'],
    [2_500_000_000_000, '2.5T'],
    [-1234, '-1.2k'],
    [-999, '-999'],
  ])('%d → %s', (n, text) => {
    expect(compactNumber(n)).toBe(text);
  });

  it.each([
    [999_950, '1.0M'],
    [999_999, '1.0M'],
    [999_999_999, '1.0B'],
    [99_960, '100k'],
  ])('rounds %d up into the next unit or width (%s), never "1000k" or "100.0k"', (n, text) => {
    expect(compactNumber(n)).toBe(text);
  });

  it('never shows more than three significant digits before the unit below 1000T', () => {
    // T is the largest unit: 999.99T rounds to "1000T" as there is nothing above it.
    expect(compactNumber(999_990_000_000_000)).toBe('1000T');
    for (let e = 3; e < 14; e++) {
      for (const m of [1, 1.5, 9.99, 9.9999]) {
        const text = compactNumber(Math.round(m * 10 ** e));
        expect(text).toMatch(/^\d{1,3}(\.\d)?[kMBT]$/);
        expect(text.replace(/\D/g, '').length).toBeLessThanOrEqual(3);
      }
    }
  });
});

describe('formatUsd', () => {
  it.each([
    [0n, '$0.00'],
    [10_000_000n, '$0.01'],
    [1_000_000_000n, '$1.00'],
    [3_456_780_000_000n, '$3,456.78'],
    [1_234_567_890_000_000n, '$1,234,567.89'],
    [100_000_000_000n, '$100.00'],
    [999_990_000_000n, '$999.99'],
  ])('%s nano-USD → %s', (nano, text) => {
    expect(formatUsd(nano)).toBe(text);
  });

  it('rounds half up to the cent', () => {
    expect(formatUsd(1_004_999_999n)).toBe('$1.00');
    expect(formatUsd(1_005_000_000n)).toBe('$1.01');
    expect(formatUsd(1_015_000_000n)).toBe('$1.02');
    expect(formatUsd(999_999_995_000_000n)).toBe('$1,000,000.00');
    expect(formatUsd(994_999_999n)).toBe('$0.99');
    expect(formatUsd(995_000_000n)).toBe('$1.00');
  });

  it('shows "<$0.01" for non-zero costs that round to zero cents, and $0.01 from half a cent', () => {
    expect(formatUsd(1n)).toBe('<$0.01');
    expect(formatUsd(4_999_999n)).toBe('<$0.01');
    expect(formatUsd(5_000_000n)).toBe('$0.01');
  });

  it('is exact far beyond 2^53 nano-USD', () => {
    expect(formatUsd(123_456_789_012_345_678_901_234n)).toBe('$123,456,789,012,345.68');
    expect(formatUsd(2n ** 64n)).toBe('$18,446,744,073.71');
  });

  it('agrees with the exact decimal formatter for 2000 generated amounts', () => {
    let s = 5;
    const next = () => {
      s = (s * 48271) % 2147483647;
      return BigInt(s);
    };
    for (let i = 0; i < 2000; i++) {
      const nano = (next() * next()) % 10n ** BigInt(6 + (i % 12));
      if (nano > 0n && nano < 5_000_000n) continue;
      // Reference: round the exact decimal string half up to cents by hand.
      const exact = formatNanoUsd(nano); // e.g. '12.3456789'
      const [whole, frac = ''] = exact.split('.');
      const digits = frac.padEnd(9, '0');
      let cents = BigInt(whole as string) * 100n + BigInt(digits.slice(0, 2));
      if (Number(digits[2]) >= 5) cents += 1n;
      const expected = `$${(cents / 100n).toLocaleString('en-US')}.${(cents % 100n).toString().padStart(2, '0')}`;
      expect(formatUsd(nano)).toBe(expected);
    }
  });

  it('formats a negative amount (a credit) with its sign in front', () => {
    expect(formatUsd(-1_500_000_000n)).toBe('-$1.50');
    expect(formatUsd(-15_000_000n)).toBe('-$0.02');
  });
});

describe('formatNanoUsd (re-exported)', () => {
  it('is the exact decimal formatter of core', () => {
    expect(formatNanoUsd(10_972_500)).toBe('0.0109725');
    expect(formatNanoUsd(1_500_000_000n)).toBe('1.50');
  });
});

describe('table', () => {
  it('aligns columns, right-aligning where asked, with a rule under the header', () => {
    const text = table(
      ['model', 'tokens'],
      [
        ['gpt-4o', '1.2k'],
        ['claude', '12.3M'],
      ],
      [false, true],
    );
    expect(text.split('\n')).toEqual([
      'model   tokens',
      '──────  ──────',
      'gpt-4o    1.2k',
      'claude   12.3M',
    ]);
  });
});
