import { describe, expect, it } from 'vitest';
import { SeriesColors } from './series-colors.js';

describe('SeriesColors', () => {
  it('a name keeps its slot whatever its rank in the next chart', () => {
    const colors = new SeriesColors(4);
    expect(colors.assign('model', ['a', 'b', 'c'])).toEqual([0, 1, 2]);
    expect(colors.assign('model', ['c', 'a', 'b'])).toEqual([2, 0, 1]);
    expect(colors.assign('model', ['b', 'd'])).toEqual([1, 3]);
    // Apps have slots of their own.
    expect(colors.assign('app', ['c'])).toEqual([0]);
  });

  it('never two names in one slot of a chart, past the palette too', () => {
    const colors = new SeriesColors(3);
    colors.assign('model', ['a', 'b', 'c']);
    const slots = colors.assign('model', ['d', 'a', 'e']);
    expect(new Set(slots).size).toBe(3);
    expect(slots[1]).toBe(0); // "a" kept its slot
    // "d" and "e" took the slots of b and c; a chart of a, b, c again stays distinct.
    expect(new Set(colors.assign('model', ['a', 'b', 'c'])).size).toBe(3);
  });
});
