import { TokenwatchError } from '@tokenwatch/core';
import { describe, expect, it } from 'vitest';
import { parseRetryAfter } from './guarded-post.js';
import { addressRefusal, checkUrl, checkUrlSyntax, type Resolver } from './ssrf-guard.js';

const DENY = { allowPrivateNetworks: false };
const ALLOW = { allowPrivateNetworks: true };

async function refusal(p: Promise<unknown>): Promise<TokenwatchError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TokenwatchError);
    return err as TokenwatchError;
  }
  throw new Error('expected a refusal');
}

describe('WHATWG URL normalises the IPv4 forms the guard relies on', () => {
  it.each([
    ['http://2130706433/', '127.0.0.1'],
    ['http://0177.0.0.1/', '127.0.0.1'],
    ['http://0x7f.0.0.1/', '127.0.0.1'],
    ['http://0x7f000001/', '127.0.0.1'],
    ['http://127.1/', '127.0.0.1'],
    ['http://017700000001/', '127.0.0.1'],
    ['http://[::ffff:127.0.0.1]/', '[::ffff:7f00:1]'],
    ['http://[0:0:0:0:0:0:0:1]/', '[::1]'],
    ['http://LOCALHOST/', 'localhost'],
  ])('%s has host %s', (url, host) => {
    expect(new URL(url).hostname).toBe(host);
  });
});

describe('checkUrlSyntax', () => {
  it.each([
    'file:///etc/passwd',
    'gopher://example.com:70/_x',
    'ftp://example.com/',
    'javascript:alert(1)',
    'data:text/plain,hi',
    'http://x@example.com/',
    'http://x:y@example.com/',
    'not a url',
    '/relative/path',
    '',
    `https://example.com/${'a'.repeat(2100)}`,
  ])('refuses %s whatever the policy', (url) => {
    for (const policy of [DENY, ALLOW]) {
      let error: unknown;
      try {
        checkUrlSyntax(url, policy);
      } catch (err) {
        error = err;
      }
      expect(error).toBeInstanceOf(TokenwatchError);
      expect((error as TokenwatchError).code).toBe('invalid_argument');
      expect((error as TokenwatchError).retryable).toBe(false);
    }
  });

  it('accepts public http and https URLs with any port, path and query', () => {
    expect(checkUrlSyntax('https://hooks.example.com:8443/a/b?x=1', DENY).host).toBe(
      'hooks.example.com',
    );
    expect(checkUrlSyntax('http://93.184.215.14:81/', DENY).literal).toBe(true);
    expect(checkUrlSyntax('http://[2606:4700:4700::1111]/', DENY).host).toBe(
      '2606:4700:4700::1111',
    );
  });

  it('names the reason and the config switch in the message, and keeps secrets out of context', () => {
    let error: TokenwatchError | undefined;
    try {
      checkUrlSyntax('http://10.1.2.3/services/T000/B000/SECRETTOKEN?x=secret', DENY);
    } catch (err) {
      error = err as TokenwatchError;
    }
    expect(error?.message).toContain('10.1.2.3 (private)');
    expect(error?.message).toContain('alerts.allowPrivateNetworks');
    expect(JSON.stringify(error?.context)).not.toContain('SECRET');
    expect(JSON.stringify(error?.context)).not.toContain('secret');
  });
});

describe('addressRefusal', () => {
  it('opens private ranges with allowPrivateNetworks but never metadata, unspecified, multicast', () => {
    for (const ip of ['127.0.0.1', '::1', '10.0.0.1', 'fc00::1', 'fe80::1', '100.64.0.1'])
      expect(addressRefusal(ip, ALLOW), ip).toBeUndefined();
    for (const ip of [
      '169.254.169.254',
      'fd00:ec2::254',
      '0.0.0.0',
      '::',
      '224.0.0.1',
      '255.255.255.255',
    ])
      expect(addressRefusal(ip, ALLOW), ip).toBeDefined();
    expect(addressRefusal('::ffff:127.0.0.1', DENY)).toBe('loopback, embeds 127.0.0.1');
    expect(addressRefusal('8.8.8.8', DENY)).toBeUndefined();
  });
});

describe('checkUrl resolves names and refuses if any address is internal', () => {
  const fixed =
    (...addresses: string[]): Resolver =>
    async () =>
      addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));

  it('passes a name whose every address is public', async () => {
    const checked = await checkUrl(
      'https://hooks.test/x',
      DENY,
      fixed('93.184.215.14', '2606:4700::1'),
    );
    expect(checked.addresses.map((a) => a.address)).toEqual(['93.184.215.14', '2606:4700::1']);
  });

  it('refuses a name with one internal address among public ones', async () => {
    const err = await refusal(
      checkUrl('https://hooks.test/x', DENY, fixed('93.184.215.14', '10.0.0.7')),
    );
    expect(err.code).toBe('invalid_argument');
    expect(err.message).toContain('hooks.test resolves to 10.0.0.7 (private)');
  });

  it('refuses localhost through the system resolver', async () => {
    const err = await refusal(checkUrl('http://localhost:8080/', DENY));
    expect(err.code).toBe('invalid_argument');
    expect(err.retryable).toBe(false);
  });

  it('reports a name that does not resolve as retryable unavailable', async () => {
    const err = await refusal(checkUrl('http://does-not-exist.invalid/', DENY));
    expect(err.code).toBe('unavailable');
    expect(err.retryable).toBe(true);
  });
});

describe('parseRetryAfter', () => {
  it('reads seconds and HTTP dates, caps at a day, ignores garbage', () => {
    const now = Date.parse('2024-10-08T14:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7);
    expect(parseRetryAfter('Tue, 08 Oct 2024 14:00:30 GMT', now)).toBe(30);
    expect(parseRetryAfter('Tue, 08 Oct 2024 13:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('999999', now)).toBe(86_400);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
