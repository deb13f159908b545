import { createHash, randomBytes } from 'node:crypto';
import {
  type ApiKeyRecord,
  type KeyRole,
  type ProjectStore,
  TokenwatchError,
} from '@tokenwatch/core';

const KEY_PREFIX = 'twk_';
const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += BASE62[b % 62];
  return out;
}

export function hashKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

export interface NewKey {
  /** The secret: shown once, never stored. */
  key: string;
  record: ApiKeyRecord;
}

/**
 * Makes a key `twk_<40 random base62 characters>` (≈238 bits, rejection-free enough: the modulo
 * bias of 256 % 62 costs under 0.3 bits per character). Only its SHA-256 is stored.
 */
export function generateKey(options: {
  projectId: string;
  role: KeyRole;
  appId?: string | undefined;
  name?: string | undefined;
  nowMs: number;
}): NewKey {
  const key = `${KEY_PREFIX}${base62(randomBytes(40))}`;
  return {
    key,
    record: {
      id: `key_${randomBytes(8).toString('hex')}`,
      projectId: options.projectId,
      hash: hashKey(key),
      prefix: key.slice(0, 12),
      role: options.role,
      appId: options.appId,
      name: options.name,
      createdAtMs: options.nowMs,
      revokedAtMs: undefined,
    },
  };
}

export interface Principal {
  key: ApiKeyRecord;
  projectId: string;
}

type Action = 'ingest' | 'read' | 'admin';

const ALLOWED: Record<KeyRole, ReadonlySet<Action>> = {
  ingest: new Set(['ingest']),
  read: new Set(['read']),
  admin: new Set(['ingest', 'read', 'admin']),
};

/**
 * Resolves `Authorization: Bearer <key>` to a principal. Looked-up keys are cached for a few
 * seconds (ingest must not hit the store per request); a revocation is seen within that time.
 */
export class KeyAuthenticator {
  private readonly cache = new Map<string, { record: ApiKeyRecord | undefined; until: number }>();

  constructor(
    private readonly store: Pick<ProjectStore, 'findKeyByHash'>,
    private readonly cacheMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async authenticate(authorization: string | undefined, action: Action): Promise<Principal> {
    if (!authorization) {
      throw new TokenwatchError('unauthenticated', 'Missing "Authorization: Bearer <key>" header.');
    }
    const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
    if (!match) {
      throw new TokenwatchError(
        'unauthenticated',
        'The Authorization header must be "Bearer <key>".',
      );
    }
    const hash = hashKey(match[1] as string);
    const nowMs = this.now();
    let entry = this.cache.get(hash);
    if (!entry || entry.until <= nowMs) {
      entry = { record: await this.store.findKeyByHash(hash), until: nowMs + this.cacheMs };
      if (this.cache.size > 10_000) this.cache.clear();
      if (this.cacheMs > 0) this.cache.set(hash, entry);
    }
    const record = entry.record;
    if (!record || record.revokedAtMs !== undefined) {
      throw new TokenwatchError('unauthenticated', 'The API key is unknown or revoked.');
    }
    if (!ALLOWED[record.role].has(action)) {
      throw new TokenwatchError(
        'forbidden',
        `A key with role "${record.role}" may not ${action === 'ingest' ? 'send events' : action === 'read' ? 'read usage' : 'administer the project'}.`,
      );
    }
    return { key: record, projectId: record.projectId };
  }

  /** Forgets cached lookups, e.g. after a key was revoked through this process. */
  invalidate(): void {
    this.cache.clear();
  }
}
