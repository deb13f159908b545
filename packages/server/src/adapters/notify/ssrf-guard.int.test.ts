import { type Notifier, TokenwatchError } from '@tokenwatch/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { guardedPost } from './guarded-post.js';
import { createSlackNotifier } from './slack/slack-notifier.js';
import { checkUrl, type Resolver } from './ssrf-guard.js';
import { type Receiver, sampleDelivery, startReceiver } from './testing/receiver.js';
import { createWebhookNotifier, generateWebhookSecret } from './webhook/webhook-notifier.js';

/**
 * Issue 3, "What must hold", SSRF: every internal target is refused when private networks are
 * not allowed, and a canary receiver listening on every local address (`::`, dual stack) sees
 * no request at all. Positive controls with `allowPrivateNetworks: true` show that the same
 * URLs do reach the canary, so the zeros are not an artefact of the set-up.
 */

const DENY = { allowPrivateNetworks: false };
const ALLOW = { allowPrivateNetworks: true };

let canary: Receiver;
let P: number;

beforeAll(async () => {
  canary = await startReceiver(() => ({ status: 204 }), '::');
  P = canary.port;
});
afterAll(async () => {
  await canary.close();
});
beforeEach(() => {
  canary.requests.length = 0;
  canary.reply(() => ({ status: 204 }));
});

async function refusal(p: Promise<unknown>): Promise<TokenwatchError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TokenwatchError);
    return err as TokenwatchError;
  }
  throw new Error('expected the send to be refused');
}

function signal(ms = 5_000): AbortSignal {
  return AbortSignal.timeout(ms);
}

const matrix = (): Array<[string, string]> => [
  ['127.0.0.1', `http://127.0.0.1:${P}/hook`],
  ['localhost', `http://localhost:${P}/hook`],
  ['localhost. (trailing dot)', `http://localhost.:${P}/hook`],
  ['sub.localhost', `http://hooks.localhost:${P}/hook`],
  ['[::1]', `http://[::1]:${P}/hook`],
  ['0.0.0.0', `http://0.0.0.0:${P}/hook`],
  ['[::]', `http://[::]:${P}/hook`],
  ['169.254.169.254 (metadata)', 'http://169.254.169.254/latest/meta-data/'],
  ['[fd00:ec2::254] (metadata)', 'http://[fd00:ec2::254]/latest/meta-data/'],
  ['10.0.0.1', 'http://10.0.0.1/hook'],
  ['172.16.0.1', 'http://172.16.0.1/hook'],
  ['192.168.1.1', 'http://192.168.1.1/hook'],
  ['100.64.0.1 (CGNAT)', 'http://100.64.0.1/hook'],
  ['[fc00::1]', 'http://[fc00::1]/hook'],
  ['[fd12:3456::1]', 'http://[fd12:3456::1]/hook'],
  ['[fe80::1]', 'http://[fe80::1]/hook'],
  ['[::ffff:127.0.0.1]', `http://[::ffff:127.0.0.1]:${P}/hook`],
  ['[::ffff:7f00:1]', `http://[::ffff:7f00:1]:${P}/hook`],
  ['[64:ff9b::127.0.0.1] (NAT64)', `http://[64:ff9b::127.0.0.1]:${P}/hook`],
  ['decimal 2130706433', `http://2130706433:${P}/hook`],
  ['octal 0177.0.0.1', `http://0177.0.0.1:${P}/hook`],
  ['hex 0x7f.1', `http://0x7f.1:${P}/hook`],
  ['short 127.1', `http://127.1:${P}/hook`],
  ['userinfo x@127.0.0.1', `http://x@127.0.0.1:${P}/hook`],
  ['file:///etc/passwd', 'file:///etc/passwd'],
  ['gopher:', `gopher://127.0.0.1:${P}/_GET`],
  ['https to loopback', `https://127.0.0.1:${P}/hook`],
];

describe('SSRF matrix with allowPrivateNetworks: false', () => {
  const webhook = createWebhookNotifier({ policy: DENY });
  const slack = createSlackNotifier({ policy: DENY });

  it('refuses every internal target at save time (checkUrl), not retryable', async () => {
    for (const [name, url] of matrix()) {
      const err = await refusal(checkUrl(url, DENY));
      expect(err.code, name).toBe('invalid_argument');
      expect(err.retryable, name).toBe(false);
    }
  });

  it('refuses every internal target at send time, for webhook and Slack; the canary sees 0 requests', async () => {
    const notifiers: Notifier[] = [webhook, slack];
    for (const [name, url] of matrix()) {
      for (const notifier of notifiers) {
        const channel =
          notifier.type === 'webhook'
            ? { type: 'webhook' as const, url, secret: generateWebhookSecret() }
            : { type: 'slack' as const, url };
        const err = await refusal(notifier.send(sampleDelivery(channel), signal()));
        expect(err.code, `${notifier.type} ${name}: ${err.message}`).toBe('invalid_argument');
        expect(err.retryable, name).toBe(false);
      }
    }
    expect(canary.requests).toHaveLength(0);
  });

  it('a redirect from an allowed receiver to an internal address is never followed', async () => {
    // Even with private networks allowed (so the first hop may be reached at all), a 3xx is a
    // failure and its Location is never requested.
    const allowed = createWebhookNotifier({ policy: ALLOW });
    const redirector = await startReceiver(() => ({ status: 302 }), '127.0.0.1');
    try {
      for (const status of [301, 302, 303, 307, 308]) {
        redirector.reply(() => ({
          status,
          headers: { location: `http://127.0.0.1:${P}/internal-admin` },
        }));
        const err = await refusal(
          allowed.send(
            sampleDelivery({ type: 'webhook', url: `${redirector.url}/hook` }),
            signal(),
          ),
        );
        expect(err.retryable, String(status)).toBe(false);
        expect(err.context.redirect).toBe(true);
        expect(err.message).toContain('redirects are not followed');
      }
      expect(redirector.requests).toHaveLength(5);
      expect(canary.requests).toHaveLength(0);
    } finally {
      await redirector.close();
    }
  });
});

describe('positive controls: the same loopback URLs reach the canary when allowed', () => {
  it.each([
    ['127.0.0.1', () => `http://127.0.0.1:${P}/hook`],
    ['localhost', () => `http://localhost:${P}/hook`],
    ['[::1]', () => `http://[::1]:${P}/hook`],
    ['[::ffff:127.0.0.1]', () => `http://[::ffff:127.0.0.1]:${P}/hook`],
    ['decimal 2130706433', () => `http://2130706433:${P}/hook`],
    ['octal 0177.0.0.1', () => `http://0177.0.0.1:${P}/hook`],
  ])('%s', async (_name, url) => {
    const webhook = createWebhookNotifier({ policy: ALLOW });
    await webhook.send(sampleDelivery({ type: 'webhook', url: url() }), signal());
    expect(canary.requests).toHaveLength(1);
    expect(canary.requests[0]?.url).toBe('/hook');
  });

  it('metadata, unspecified addresses, userinfo and non-http schemes stay refused when allowed', async () => {
    const webhook = createWebhookNotifier({ policy: ALLOW });
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00:ec2::254]/',
      `http://0.0.0.0:${P}/hook`,
      `http://[::]:${P}/hook`,
      `http://x@127.0.0.1:${P}/hook`,
      'file:///etc/passwd',
    ]) {
      const err = await refusal(webhook.send(sampleDelivery({ type: 'webhook', url }), signal()));
      expect(err.code, url).toBe('invalid_argument');
    }
    expect(canary.requests).toHaveLength(0);
  });
});

describe('connect-time check (DNS rebinding)', () => {
  it('the socket connects to the address the guarded lookup returned', async () => {
    // `rebind.test` exists in no DNS: reaching the canary proves the connection used our lookup.
    const resolve: Resolver = async () => [{ address: '127.0.0.1', family: 4 }];
    const res = await guardedPost(`http://rebind.test:${P}/x`, {
      body: '{}',
      policy: ALLOW,
      resolve,
    });
    expect(res.status).toBe(204);
    expect(canary.requests).toHaveLength(1);
    expect(canary.requests[0]?.headers.host).toBe(`rebind.test:${P}`);
  });

  it('a name that was public when saved and resolves to loopback when sent is refused', async () => {
    let calls = 0;
    const rebinding: Resolver = async () => {
      calls += 1;
      return [{ address: calls === 1 ? '93.184.215.14' : '127.0.0.1', family: 4 }];
    };
    const url = `http://rebind.test:${P}/hook`;
    // Saved: the first answer is public, so the URL passes.
    await expect(checkUrl(url, DENY, rebinding)).resolves.toMatchObject({ host: 'rebind.test' });
    // Sent: the connect-time lookup sees loopback and refuses.
    const webhook = createWebhookNotifier({ policy: DENY, resolve: rebinding });
    const err = await refusal(webhook.send(sampleDelivery({ type: 'webhook', url }), signal()));
    expect(err.code).toBe('invalid_argument');
    expect(err.message).toContain('rebind.test resolves to 127.0.0.1 (loopback)');
    expect(calls).toBe(2);
    expect(canary.requests).toHaveLength(0);
  });

  it('refuses when one of several addresses is internal, even if the first is public', async () => {
    const mixed: Resolver = async () => [
      { address: '93.184.215.14', family: 4 },
      { address: '::ffff:127.0.0.1', family: 6 },
    ];
    const err = await refusal(
      guardedPost(`http://mixed.test:${P}/`, { body: '{}', policy: DENY, resolve: mixed }),
    );
    expect(err.code).toBe('invalid_argument');
    expect(canary.requests).toHaveLength(0);
  });
});
