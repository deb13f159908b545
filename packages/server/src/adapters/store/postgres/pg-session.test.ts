import { describe, expect, it } from 'vitest';
import { connectionOptions } from './pg-session.js';

describe('connectionOptions', () => {
  it('sets the schema, then each session setting', () => {
    expect(connectionOptions('c_1', {})).toBe('-c search_path=c_1');
    expect(connectionOptions('tw', { synchronous_commit: 'off', statement_timeout: '30s' })).toBe(
      '-c search_path=tw -c synchronous_commit=off -c statement_timeout=30s',
    );
  });

  it('refuses a setting that could carry another option or a quote', () => {
    for (const [name, value] of [
      ['synchronous_commit', 'off -c search_path=other'],
      ['statement_timeout', "1'"],
      ['bad name', 'x'],
      ['Search_Path', 'x'],
    ] as const) {
      expect(() => connectionOptions('tw', { [name]: value })).toThrow(
        /invalid PostgreSQL session setting/,
      );
    }
  });
});
