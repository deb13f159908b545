import { describe, expect, it } from 'vitest';
import { createUuidV7 } from './uuid-v7.js';

describe('createUuidV7', () => {
  it('encodes the millisecond time in the first 48 bits and the version and variant bits', () => {
    const id = createUuidV7(() => 0x0123456789ab)();
    expect(id.slice(0, 13)).toBe('01234567-89ab');
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });

  it('stays strictly ordered within one millisecond and when the clock goes back', () => {
    let t = 1_767_225_600_000;
    const next = createUuidV7(() => t);
    const ids: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      if (i === 5000) t -= 10; // clock step backwards
      ids.push(next());
    }
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });
});
