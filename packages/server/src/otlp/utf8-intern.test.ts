import { describe, expect, it } from 'vitest';
import { type Utf8Buffer, Utf8InternTable } from './utf8-intern.js';

const bufferOf = (...parts: Array<string | number[]>): Utf8Buffer =>
  Buffer.concat(
    parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : Buffer.from(p))),
  ) as Utf8Buffer;

describe('Utf8InternTable', () => {
  it('decodes any slice of a buffer to its text, short and long, ASCII or not', () => {
    const table = new Utf8InternTable();
    const texts = [
      '',
      'a',
      'gen_ai.usage.input_tokens',
      'naïve ☕ 日本語',
      'x'.repeat(49),
      'y'.repeat(500),
    ];
    for (const text of texts) {
      const buf = bufferOf('>>', text, '<<');
      const end = buf.length - 2;
      expect(table.decode(buf, 2, end)).toBe(text);
      expect(table.decode(buf, 2, end)).toBe(text); // from the table the second time
    }
  });

  it('gives back the same string for the same bytes in another buffer', () => {
    const table = new Utf8InternTable();
    const first = table.decode(bufferOf('user.id'), 0, 7);
    const again = table.decode(bufferOf('..user.id'), 2, 9);
    expect(again).toBe('user.id');
    expect(again).toBe(first);
  });

  it('never returns the string of other bytes, with every slot in use and many collisions', () => {
    const table = new Utf8InternTable();
    // 40,000 distinct strings through 8,192 slots: most slots are shared, so hits must compare bytes.
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 40_000; i++) {
        const text = `user-${i}`;
        const buf = bufferOf(text);
        expect(table.decode(buf, 0, buf.length)).toBe(text);
      }
    }
    // Same length and same bytes but one: not confused.
    expect(table.decode(bufferOf('model-a'), 0, 7)).toBe('model-a');
    expect(table.decode(bufferOf('model-b'), 0, 7)).toBe('model-b');
    expect(table.decode(bufferOf('model-a'), 0, 7)).toBe('model-a');
  });

  it('refuses invalid UTF-8, short or long, also where valid text of the same length was seen', () => {
    const table = new Utf8InternTable();
    expect(table.decode(bufferOf('ab'), 0, 2)).toBe('ab');
    expect(() => table.decode(bufferOf([0x61, 0xff]), 0, 2)).toThrow(/not valid UTF-8/);
    expect(() => table.decode(bufferOf([0xc3]), 0, 1)).toThrow(/not valid UTF-8/);
    expect(() => table.decode(bufferOf('z'.repeat(60), [0xfe]), 0, 61)).toThrow(/not valid UTF-8/);
    // A real U+FFFD in valid UTF-8 is text like any other.
    const replacement = bufferOf('a\uFFFDb');
    expect(table.decode(replacement, 0, replacement.length)).toBe('a\uFFFDb');
  });
});
