import { describe, expect, it } from 'vitest';
import { checkWithin } from './deadline.js';

describe('checkWithin', () => {
  it('is undefined when the check succeeds', async () => {
    expect(await checkWithin('store', async () => 1, 1_000)).toBeUndefined();
  });

  it('names the dependency and its error when the check fails', async () => {
    const problem = await checkWithin(
      'store',
      async () => {
        throw new Error('connect ECONNREFUSED 127.0.0.1:5999');
      },
      1_000,
    );
    expect(problem).toBe('store unavailable: connect ECONNREFUSED 127.0.0.1:5999');
  });

  it('answers that the dependency did not answer when the check never settles', async () => {
    const problem = await checkWithin('NATS', () => new Promise(() => {}), 50);
    expect(problem).toBe('NATS did not answer within 50 ms');
  });
});
