import { describe, expect, it } from 'vitest';
import { listenForStop } from './stop-signal.js';

describe('listenForStop', () => {
  it('keeps a signal that arrives before anyone awaits it, then stops listening', async () => {
    const before = process.listenerCount('SIGUSR2');
    const stop = listenForStop(['SIGUSR2']);
    expect(process.listenerCount('SIGUSR2')).toBe(before + 1);
    // Delivered by the OS to this process while "startup" is still running.
    process.kill(process.pid, 'SIGUSR2');
    await new Promise((r) => setTimeout(r, 50));
    // Only now does the command look: the signal was not lost, and the process was not ended.
    expect(await stop.received).toBe('SIGUSR2');
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });

  it('dispose removes the listeners when the command ends another way', () => {
    const before = process.listenerCount('SIGUSR2');
    const stop = listenForStop(['SIGUSR2']);
    stop.dispose();
    expect(process.listenerCount('SIGUSR2')).toBe(before);
  });
});
