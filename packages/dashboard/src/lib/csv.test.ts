import { describe, expect, it } from 'vitest';
import { csvFileName, toCsv } from './csv.js';

describe('csv', () => {
  it('quotes per RFC 4180 and defuses formulas', () => {
    const csv = toCsv(
      [
        { key: 'name', label: 'name' },
        { key: 'v', label: 'value' },
      ],
      [
        { name: 'a,b', v: 1 },
        { name: 'say "hi"', v: 2.5 },
        { name: '=HYPERLINK("x")', v: -3 },
        { name: '@cmd', v: undefined },
      ],
    );
    expect(csv).toBe(
      'name,value\r\n"a,b",1\r\n"say ""hi""",2.5\r\n"\'=HYPERLINK(""x"")",-3\r\n"\'@cmd",\r\n',
    );
  });

  it('makes safe file names', () => {
    expect(csvFileName(['user', '../<x>', 'tokens'], Date.UTC(2026, 0, 6))).toBe(
      'tokenwatch-user-x-tokens-2026-01-06.csv',
    );
  });
});
