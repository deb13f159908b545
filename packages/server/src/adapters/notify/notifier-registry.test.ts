import { describe, expect, it } from 'vitest';
import { createLogger } from '../../logging/logger.js';
import { createNotifiers } from './notifier-registry.js';

describe('createNotifiers', () => {
  const logger = createLogger('silent');
  const policy = { allowPrivateNetworks: false };

  it('has webhook, slack and log; email only with SMTP config; no sns (AWS issue)', () => {
    expect([...createNotifiers({ logger, policy }).keys()].sort()).toEqual([
      'log',
      'slack',
      'webhook',
    ]);
    const withEmail = createNotifiers({
      logger,
      policy,
      email: { host: '127.0.0.1', port: 25, secure: false, from: 'tw@example.com' },
    });
    expect([...withEmail.keys()].sort()).toEqual(['email', 'log', 'slack', 'webhook']);
    expect(withEmail.has('sns')).toBe(false);
    for (const [type, notifier] of withEmail) expect(notifier.type).toBe(type);
  });
});
