import { createHash } from 'node:crypto';
import { type ApiKeyRecord, type KeyRole, TokenwatchError } from '@tokenwatch/core';
import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryStore } from '../adapters/store/memory/memory-store.js';
import { generateKey, hashKey, KeyAuthenticator } from './api-keys.js';

const NOW = Date.UTC(2026, 0, 31, 12);

describe('hashKey', () => {
  it('is the hex SHA-256 of the key', () => {
    expect(hashKey('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
    expect(hashKey('twk_x')).toBe(createHash('sha256').update('twk_x').digest('hex'));
  });
});

describe('generateKey', () => {
  it('makes twk_ + 40 base62 characters', () => {
    for (let i = 0; i < 200; i++) {
      const { key } = generateKey({ projectId: 'p', role: 'ingest', nowMs: NOW });
      expect(key).toMatch(/^twk_[0-9A-Za-z]{40}$/);
    }
  });

  it('stores only the hash and a short display prefix, never the key', () => {
    const { key, record } = generateKey({
      projectId: 'p1',
      role: 'admin',
      appId: 'checkout',
      name: 'ci',
      nowMs: NOW,
    });
    expect(record).toEqual({
      id: expect.stringMatching(/^key_[0-9a-f]{16}$/),
      projectId: 'p1',
      hash: hashKey(key),
      prefix: key.slice(0, 12),
      role: 'admin',
      appId: 'checkout',
      name: 'ci',
      createdAtMs: NOW,
      revokedAtMs: undefined,
    });
    expect(record.prefix).toMatch(/^twk_[0-9A-Za-z]{8}$/);
    const stored = JSON.stringify(record);
    expect(stored).not.toContain(key);
    expect(stored).not.toContain(key.slice(12));
  });

  it('leaves appId and name undefined when not given', () => {
    const { record } = generateKey({ projectId: 'p', role: 'read', nowMs: NOW });
    expect(record.appId).toBeUndefined();
    expect(record.name).toBeUndefined();
  });

  it('never repeats a key or an id, and uses the whole base62 alphabet', () => {
    const keys = new Set<string>();
    const ids = new Set<string>();
    const chars = new Set<string>();
    for (let i = 0; i < 2000; i++) {
      const { key, record } = generateKey({ projectId: 'p', role: 'ingest', nowMs: NOW });
      keys.add(key);
      ids.add(record.id);
      for (const c of key.slice(4)) chars.add(c);
    }
    expect(keys.size).toBe(2000);
    expect(ids.size).toBe(2000);
    expect(chars.size).toBe(62);
  });
});

describe('KeyAuthenticator', () => {
  let store: MemoryStore;
  let clock: number;
  let lookups: number;
  let auth: KeyAuthenticator;
  const keys: Record<KeyRole, string> = { ingest: '', read: '', admin: '' };
  const records: Partial<Record<KeyRole, ApiKeyRecord>> = {};

  /** The real in-memory store, counting how often the authenticator reaches it. */
  function countingStore() {
    return {
      findKeyByHash: (hash: string) => {
        lookups++;
        return store.findKeyByHash(hash);
      },
    };
  }

  beforeEach(async () => {
    store = new MemoryStore();
    clock = NOW;
    lookups = 0;
    await store.createProject({ id: 'p1', name: 'Project 1', createdAtMs: NOW });
    for (const role of ['ingest', 'read', 'admin'] as const) {
      const k = generateKey({ projectId: 'p1', role, nowMs: NOW });
      await store.createKey(k.record);
      keys[role] = k.key;
      records[role] = k.record;
    }
    auth = new KeyAuthenticator(countingStore(), 5000, () => clock);
  });

  async function refusal(promise: Promise<unknown>): Promise<TokenwatchError> {
    try {
      await promise;
    } catch (err) {
      expect(err).toBeInstanceOf(TokenwatchError);
      return err as TokenwatchError;
    }
    throw new Error('expected a refusal');
  }

  describe('roles', () => {
    const matrix: Array<[KeyRole, 'ingest' | 'read' | 'admin', boolean]> = [
      ['ingest', 'ingest', true],
      ['ingest', 'read', false],
      ['ingest', 'admin', false],
      ['read', 'ingest', false],
      ['read', 'read', true],
      ['read', 'admin', false],
      ['admin', 'ingest', true],
      ['admin', 'read', true],
      ['admin', 'admin', true],
    ];

    it.each(matrix)('a %s key may %s: %s', async (role, action, allowed) => {
      const attempt = auth.authenticate(`Bearer ${keys[role]}`, action);
      if (allowed) {
        const principal = await attempt;
        expect(principal.projectId).toBe('p1');
        expect(principal.key).toEqual(records[role]);
      } else {
        const err = await refusal(attempt);
        expect(err.code).toBe('forbidden');
        expect(err.retryable).toBe(false);
        expect(err.message).toContain(`"${role}"`);
      }
    });

    it('returns the app binding of the key', async () => {
      const bound = generateKey({ projectId: 'p1', role: 'ingest', appId: 'checkout', nowMs: NOW });
      await store.createKey(bound.record);
      const principal = await auth.authenticate(`Bearer ${bound.key}`, 'ingest');
      expect(principal.key.appId).toBe('checkout');
    });
  });

  describe('headers', () => {
    it.each([
      (k: string) => `Bearer ${k}`,
      (k: string) => `bearer ${k}`,
      (k: string) => `BEARER ${k}`,
      (k: string) => `Bearer    ${k}`,
      (k: string) => `Bearer\t${k}`,
      (k: string) => `Bearer ${k}  `,
    ])('accepts the header form #%#', async (form) => {
      const principal = await auth.authenticate(form(keys.ingest), 'ingest');
      expect(principal.projectId).toBe('p1');
    });

    it.each([undefined, ''])('refuses a missing header (%j) as unauthenticated', async (header) => {
      const err = await refusal(auth.authenticate(header, 'ingest'));
      expect(err.code).toBe('unauthenticated');
      expect(err.message).toMatch(/Missing/);
    });

    it.each([
      (k: string) => k,
      (k: string) => `Basic ${Buffer.from(`u:${k}`).toString('base64')}`,
      () => `Bearer`,
      () => `Bearer `,
      (k: string) => `Bearer ${k} extra`,
      (k: string) => `Token ${k}`,
      (k: string) => ` Bearer ${k}`,
      (k: string) => `Bearer${k}`,
    ])('refuses the malformed header form #%# without a store lookup', async (form) => {
      const err = await refusal(auth.authenticate(form(keys.admin), 'read'));
      expect(err.code).toBe('unauthenticated');
      expect(err.message).toMatch(/must be "Bearer <key>"/);
      expect(lookups).toBe(0);
    });

    it('refuses an unknown key', async () => {
      const err = await refusal(auth.authenticate('Bearer twk_notarealkey', 'ingest'));
      expect(err.code).toBe('unauthenticated');
      expect(err.message).toMatch(/unknown or revoked/);
    });

    it('refuses a key that differs in one character or in case', async () => {
      const k = keys.ingest;
      const last = k.at(-1) === 'a' ? 'b' : 'a';
      for (const wrong of [`${k.slice(0, -1)}${last}`, k.toUpperCase(), `${k}x`, k.slice(0, -1)]) {
        const err = await refusal(auth.authenticate(`Bearer ${wrong}`, 'ingest'));
        expect(err.code).toBe('unauthenticated');
      }
    });

    it('never echoes the key in its errors', async () => {
      const secret = 'twk_SECRETSECRETSECRET';
      const err = await refusal(auth.authenticate(`Bearer ${secret}`, 'ingest'));
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err.details)).not.toContain(secret);
    });
  });

  describe('revocation and the cache', () => {
    it('refuses a revoked key', async () => {
      await store.revokeKey('p1', records.ingest?.id as string, NOW);
      const err = await refusal(auth.authenticate(`Bearer ${keys.ingest}`, 'ingest'));
      expect(err.code).toBe('unauthenticated');
      expect(err.message).toMatch(/revoked/);
    });

    it('serves repeated lookups from the cache within the TTL', async () => {
      for (let i = 0; i < 10; i++) {
        await auth.authenticate(`Bearer ${keys.ingest}`, 'ingest');
        clock += 400; // 10 × 400 ms spans 3.6 s < 5 s
      }
      expect(lookups).toBe(1);
    });

    it('sees a revocation once the TTL has passed, and not before', async () => {
      await auth.authenticate(`Bearer ${keys.ingest}`, 'ingest');
      await store.revokeKey('p1', records.ingest?.id as string, clock);

      clock += 4999;
      await expect(auth.authenticate(`Bearer ${keys.ingest}`, 'ingest')).resolves.toMatchObject({
        projectId: 'p1',
      });
      clock += 2; // 5001 ms after the lookup
      const err = await refusal(auth.authenticate(`Bearer ${keys.ingest}`, 'ingest'));
      expect(err.code).toBe('unauthenticated');
      expect(lookups).toBe(2);
    });

    it('sees a revocation at once after invalidate()', async () => {
      await auth.authenticate(`Bearer ${keys.read}`, 'read');
      await store.revokeKey('p1', records.read?.id as string, clock);
      auth.invalidate();
      const err = await refusal(auth.authenticate(`Bearer ${keys.read}`, 'read'));
      expect(err.code).toBe('unauthenticated');
    });

    it('caches unknown keys too, so a flood of bad keys does not hit the store per request', async () => {
      for (let i = 0; i < 5; i++) {
        await refusal(auth.authenticate('Bearer twk_unknown', 'ingest'));
      }
      expect(lookups).toBe(1);
    });

    it('finds a key created after a failed lookup once the TTL has passed', async () => {
      const later = generateKey({ projectId: 'p1', role: 'ingest', nowMs: NOW });
      await refusal(auth.authenticate(`Bearer ${later.key}`, 'ingest'));
      await store.createKey(later.record);
      clock += 5001;
      await expect(auth.authenticate(`Bearer ${later.key}`, 'ingest')).resolves.toMatchObject({
        projectId: 'p1',
      });
    });

    it('caches per key: each key is looked up once', async () => {
      await auth.authenticate(`Bearer ${keys.ingest}`, 'ingest');
      await auth.authenticate(`Bearer ${keys.read}`, 'read');
      await auth.authenticate(`Bearer ${keys.ingest}`, 'ingest');
      await auth.authenticate(`Bearer ${keys.read}`, 'read');
      expect(lookups).toBe(2);
    });

    it('a role refusal does not depend on the cache', async () => {
      await auth.authenticate(`Bearer ${keys.read}`, 'read');
      const err = await refusal(auth.authenticate(`Bearer ${keys.read}`, 'ingest'));
      expect(err.code).toBe('forbidden');
    });

    it('looks the key up on every request when the cache time is 0', async () => {
      const uncached = new KeyAuthenticator(countingStore(), 0, () => clock);
      await uncached.authenticate(`Bearer ${keys.ingest}`, 'ingest');
      await store.revokeKey('p1', records.ingest?.id as string, clock);
      // Same millisecond: with no cache the revocation must still be seen.
      const err = await refusal(uncached.authenticate(`Bearer ${keys.ingest}`, 'ingest'));
      expect(err.code).toBe('unauthenticated');
    });
  });
});
