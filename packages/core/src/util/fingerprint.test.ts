import { describe, expect, it } from 'vitest';
import { base36, fingerprint } from './fingerprint.js';

describe('fingerprint (cyrb53, base 36)', () => {
  it('matches the published cyrb53 reference values, so stored fingerprints stay valid', () => {
    // Reference outputs of cyrb53 with seed 0, as published with the algorithm.
    const reference: Array<[string, number]> = [
      ['a', 7929297801672961],
      ['b', 8684336938537663],
      ['revenge', 4051478007546757],
      ['revenue', 8309097637345594],
    ];
    for (const [text, value] of reference) {
      expect(fingerprint(text)).toBe(value.toString(36));
    }
  });

  it('pins a few more values (any change here re-flags every stored event as a conflict)', () => {
    expect(fingerprint('')).toBe('wvjl67o803');
    expect(fingerprint('a')).toBe('262p94epp1d');
  });

  it('is stable across calls', () => {
    const text = `x\u0000${'y'.repeat(10_000)}\u0001é🚀`;
    const first = fingerprint(text);
    for (let i = 0; i < 5; i++) expect(fingerprint(text)).toBe(first);
  });

  it('is a short base-36 string of at most 53 bits', () => {
    for (const text of ['', 'a', 'hello world', '🚀'.repeat(100)]) {
      const fp = fingerprint(text);
      expect(fp).toMatch(/^[0-9a-z]{1,11}$/);
      expect(Number.parseInt(fp, 36)).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER);
    }
  });

  it('tells apart near-identical texts (one character, order, length, separators)', () => {
    const texts = [
      'abc',
      'abd',
      'acb',
      'abc\u0000',
      '\u0000abc',
      'ab\u0000c',
      'a\u0000bc',
      'ABC',
      'abcabc',
      'ab',
      'é',
      'e\u0301',
      '\ud83d\ude80',
      '\ude80\ud83d',
    ];
    const fps = texts.map(fingerprint);
    expect(new Set(fps).size).toBe(texts.length);
  });

  it('has no collision among 20 000 related texts', () => {
    const seen = new Map<string, string>();
    for (let i = 0; i < 20_000; i++) {
      const text = `1769860800000\u0000user-${i % 97}\u0000app\u0000gpt-4o\u0000\u0000${i}\u000020`;
      const fp = fingerprint(text);
      const previous = seen.get(fp);
      if (previous !== undefined) throw new Error(`collision: ${previous} / ${text}`);
      seen.set(fp, text);
    }
  });

  it('renders base 36 exactly as Number#toString(36), over the whole 53-bit range', () => {
    const edges = [0, 1, 35, 36, 37, 1295, 1296, 2 ** 32 - 1, 2 ** 32, 2 ** 52, 2 ** 53 - 1];
    for (const n of edges) expect(base36(n)).toBe(n.toString(36));
    let state = 12345;
    const random32 = () => {
      state = (Math.imul(state, 1103515245) + 12345) >>> 0;
      return state;
    };
    for (let i = 0; i < 20_000; i++) {
      const n = 4294967296 * (2097151 & random32()) + random32();
      expect(base36(n)).toBe(n.toString(36));
    }
  });
});
