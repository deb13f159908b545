import { describe, expect, it } from 'vitest';
import { defaultState, formatLocation, parseLocation, type ViewState } from './url-state.js';

function roundTrip(s: ViewState): ViewState {
  const url = new URL(formatLocation(s), 'http://x');
  return parseLocation(url.pathname, url.search);
}

describe('url state', () => {
  it('defaults make a bare URL', () => {
    expect(formatLocation(defaultState())).toBe('/');
    expect(parseLocation('/', '')).toEqual(defaultState());
  });

  it('round-trips every field', () => {
    const s: ViewState = {
      ...defaultState(),
      view: 'user',
      userId: 'a/b <c>&d=e',
      range: { fromMs: Date.UTC(2026, 0, 1), toMs: Date.UTC(2026, 0, 2, 12) },
      interval: 'hour',
      filters: {
        app: ['chat', 'x,y'],
        model: ['us.anthropic.claude-sonnet-4-5-20250929-v1:0'],
        user: ['alice'],
        tag: { key: 'team:a', value: 'x=y&z' },
      },
      stack: 'app',
      share: 'cost',
      n: 50,
      sort: 'costUsd',
    };
    expect(roundTrip(s)).toEqual(s);
    expect(roundTrip({ ...defaultState(), view: 'top', range: { preset: '7d' } })).toEqual({
      ...defaultState(),
      view: 'top',
      range: { preset: '7d' },
    });
  });

  it('ignores what it does not understand', () => {
    const s = parseLocation('/nowhere', '?range=13y&interval=week&n=7&stack=user&tag=bad key=1');
    expect(s).toEqual(defaultState());
  });

  it('knows every view path', () => {
    expect(parseLocation('/breakdown', '').view).toBe('breakdown');
    expect(parseLocation('/top/', '').view).toBe('top');
    expect(parseLocation('/alerts', '').view).toBe('alerts');
    expect(parseLocation('/users/alice%40example.com', '').userId).toBe('alice@example.com');
  });
});
