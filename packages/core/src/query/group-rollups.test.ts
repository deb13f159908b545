import { describe, expect, it } from 'vitest';
import { compareCodePoints } from './group-rollups.js';

describe('compareCodePoints', () => {
  it('orders like UTF-8 bytes (SQL text order), not like UTF-16 code units', () => {
    const samples = ['a', 'b', 'ab', '', 'é', '\uffff', '😀', '\ue000', 'z😀', 'z\uffff', 'Ω', 'A'];
    const utf8 = (s: string) => [...new TextEncoder().encode(s)];
    const byBytes = [...samples].sort((x, y) => {
      const a = utf8(x);
      const b = utf8(y);
      for (let i = 0; i < Math.min(a.length, b.length); i++) {
        if (a[i] !== b[i]) return (a[i] as number) - (b[i] as number);
      }
      return a.length - b.length;
    });
    expect([...samples].sort(compareCodePoints)).toEqual(byBytes);
    // The plain JS order differs exactly on astral vs. high-BMP characters.
    expect(['😀', '\uffff'].sort()).toEqual(['😀', '\uffff']);
    expect(['😀', '\uffff'].sort(compareCodePoints)).toEqual(['\uffff', '😀']);
  });
});
