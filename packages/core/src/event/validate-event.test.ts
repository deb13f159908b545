import { describe, expect, it } from 'vitest';
import type { ValidationIssue } from '../errors.js';
import { EVENT_LIMITS } from './usage-event.js';
import {
  type EventValidation,
  MAX_EVENTS_PER_REQUEST,
  type ValidationContext,
  validateBatch,
  validateEvent,
} from './validate-event.js';

/** A fixed server clock: 2026-01-31T12:00:00.000Z. */
const NOW = Date.UTC(2026, 0, 31, 12, 0, 0, 0);
const CTX: ValidationContext = { nowMs: NOW };
const DAY_MS = 86_400_000;

type Raw = Record<string, unknown>;

function validEvent(overrides: Raw = {}): Raw {
  return {
    id: '0190f3b2-7c1a-7000-8000-000000000001',
    timestamp: '2026-01-31T11:00:00Z',
    userId: 'user-1',
    appId: 'app-1',
    modelId: 'gpt-4o',
    inputTokens: 100,
    outputTokens: 20,
    ...overrides,
  };
}

function without(raw: Raw, field: string): Raw {
  const copy = { ...raw };
  delete copy[field];
  return copy;
}

function issuesOf(result: EventValidation): ValidationIssue[] {
  if (result.ok) throw new Error(`expected a refusal, got ${JSON.stringify(result.event)}`);
  return result.issues;
}

function accepted(result: EventValidation) {
  if (!result.ok) throw new Error(`expected acceptance, got ${JSON.stringify(result.issues)}`);
  return result.event;
}

/** The issues of a refused event, as `field` → reason, for concise assertions. */
function fieldsOf(result: EventValidation): string[] {
  return issuesOf(result).map((i) => i.field);
}

function expectOnlyIssue(result: EventValidation, field: string, reason?: RegExp): void {
  const issues = issuesOf(result);
  expect(issues.map((i) => i.field)).toEqual([field]);
  if (reason) expect(issues[0]?.reason).toMatch(reason);
}

/** A small deterministic PRNG (mulberry32) for generated cases; fast-check is not installed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function snapshotObjectPrototype(): string[] {
  return Object.getOwnPropertyNames(Object.prototype).sort();
}

describe('validateEvent: a valid event', () => {
  it('is accepted and mapped to the domain event with defaults', () => {
    const event = accepted(validateEvent(validEvent(), CTX));
    expect(event).toEqual({
      id: '0190f3b2-7c1a-7000-8000-000000000001',
      timestampMs: Date.UTC(2026, 0, 31, 11),
      userId: 'user-1',
      appId: 'app-1',
      modelId: 'gpt-4o',
      provider: undefined,
      inputTokens: 100,
      outputTokens: 20,
      cacheReadTokens: 0,
      cacheWriteTokens: 0,
      latencyMs: undefined,
      status: 'ok',
      tags: undefined,
    });
  });

  it('keeps every optional field', () => {
    const event = accepted(
      validateEvent(
        validEvent({
          provider: 'OpenAI',
          cacheReadTokens: 7,
          cacheWriteTokens: 3,
          latencyMs: 12.5,
          status: 'error',
          tags: { team: 'ml', 'env.stage:x-y_z': 'prod' },
        }),
        CTX,
      ),
    );
    expect(event.provider).toBe('openai');
    expect(event.cacheReadTokens).toBe(7);
    expect(event.cacheWriteTokens).toBe(3);
    expect(event.latencyMs).toBe(12.5);
    expect(event.status).toBe('error');
    expect({ ...event.tags }).toEqual({ team: 'ml', 'env.stage:x-y_z': 'prod' });
    expect(Object.getPrototypeOf(event.tags)).toBeNull();
  });

  it('treats null latencyMs and null tags as absent', () => {
    const event = accepted(validateEvent(validEvent({ latencyMs: null, tags: null }), CTX));
    expect(event.latencyMs).toBeUndefined();
    expect(event.tags).toBeUndefined();
  });

  it('treats empty tags as no tags', () => {
    expect(accepted(validateEvent(validEvent({ tags: {} }), CTX)).tags).toBeUndefined();
  });

  it('does not modify its input', () => {
    const raw = validEvent({ provider: 'OpenAI', tags: { a: 'b' } });
    const before = JSON.stringify(raw);
    validateEvent(raw, CTX);
    expect(JSON.stringify(raw)).toBe(before);
  });
});

describe('validateEvent: shape and types', () => {
  it.each([
    [null, 'null'],
    [[], 'an array'],
    ['event', 'a string'],
    [42, 'a number'],
    [undefined, 'a undefined'],
    [true, 'a boolean'],
  ])('refuses a non-object event %j', (raw, described) => {
    const issues = issuesOf(validateEvent(raw, CTX));
    expect(issues).toEqual([{ field: '', reason: `event must be an object, got ${described}` }]);
  });

  it.each(['id', 'userId', 'appId', 'modelId', 'inputTokens', 'outputTokens', 'timestamp'])(
    'requires %s',
    (field) => {
      expect(fieldsOf(validateEvent(without(validEvent(), field), CTX))).toEqual([field]);
    },
  );

  it.each(['id', 'userId', 'appId', 'modelId', 'provider'])('refuses a non-string %s', (field) => {
    for (const bad of [1, true, null, {}, ['x']]) {
      expectOnlyIssue(validateEvent(validEvent({ [field]: bad }), CTX), field, /must be a string/);
    }
  });

  it.each(['id', 'userId', 'appId', 'modelId', 'provider'])('refuses an empty %s', (field) => {
    expectOnlyIssue(validateEvent(validEvent({ [field]: '' }), CTX), field, /must not be empty/);
  });

  it.each([
    ['id', EVENT_LIMITS.idMaxLength],
    ['userId', EVENT_LIMITS.userIdMaxLength],
    ['appId', EVENT_LIMITS.appIdMaxLength],
    ['modelId', EVENT_LIMITS.modelIdMaxLength],
    ['provider', EVENT_LIMITS.providerMaxLength],
  ])('limits %s to %i characters', (field, max) => {
    expect(validateEvent(validEvent({ [field]: 'x'.repeat(max) }), CTX).ok).toBe(true);
    expectOnlyIssue(
      validateEvent(validEvent({ [field]: 'x'.repeat(max + 1) }), CTX),
      field,
      new RegExp(`at most ${max} characters, got ${max + 1}`),
    );
  });

  it('pins the documented limits', () => {
    expect(EVENT_LIMITS).toMatchObject({
      idMaxLength: 128,
      userIdMaxLength: 256,
      appIdMaxLength: 256,
      modelIdMaxLength: 512,
      providerMaxLength: 64,
      maxTokensPerField: 1_000_000_000,
      maxTags: 16,
      tagKeyMaxLength: 64,
      tagValueMaxLength: 256,
      maxAgeMs: 35 * DAY_MS,
      maxFutureMs: 5 * 60_000,
    });
  });

  it.each(['id', 'userId', 'appId', 'modelId', 'provider'])(
    'refuses control characters in %s',
    (field) => {
      for (const ch of ['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f']) {
        expectOnlyIssue(
          validateEvent(validEvent({ [field]: `a${ch}b` }), CTX),
          field,
          /control characters/,
        );
      }
    },
  );

  it('accepts printable non-ASCII identifiers', () => {
    const event = accepted(
      validateEvent(validEvent({ userId: 'Zoë 🚀 ユーザー', appId: 'app "quoted", comma' }), CTX),
    );
    expect(event.userId).toBe('Zoë 🚀 ユーザー');
    expect(event.appId).toBe('app "quoted", comma');
  });

  it('lower-cases the provider and leaves the model id as sent', () => {
    const event = accepted(
      validateEvent(validEvent({ provider: 'AWS.Bedrock', modelId: ' GPT-4o ' }), CTX),
    );
    expect(event.provider).toBe('aws.bedrock');
    expect(event.modelId).toBe(' GPT-4o ');
  });

  it.each([
    ['ok', 'ok'],
    ['error', 'error'],
    ['no_usage', 'no_usage'],
  ])('accepts status %s', (status, expected) => {
    expect(accepted(validateEvent(validEvent({ status }), CTX)).status).toBe(expected);
  });

  it('accepts status denied without tokens, and refuses tokens on a denied call', () => {
    const zero = { inputTokens: 0, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    expect(accepted(validateEvent(validEvent({ status: 'denied', ...zero }), CTX)).status).toBe(
      'denied',
    );
    expectOnlyIssue(
      validateEvent(validEvent({ status: 'denied', ...zero, cacheReadTokens: 3 }), CTX),
      'cacheReadTokens',
      /must be 0 when status is "denied"/,
    );
  });

  it.each(['OK', 'failed', '', 0, null, true, 'NO_USAGE'])('refuses status %j', (status) => {
    expectOnlyIssue(
      validateEvent(validEvent({ status }), CTX),
      'status',
      /"ok", "error", "no_usage", "denied"/,
    );
  });

  it('accepts latencyMs from 0 to 86 400 000, fractions included', () => {
    for (const latencyMs of [0, 0.25, 1234.5, 86_400_000]) {
      expect(accepted(validateEvent(validEvent({ latencyMs }), CTX)).latencyMs).toBe(latencyMs);
    }
  });

  it.each([-1, 86_400_001, Number.NaN, Number.POSITIVE_INFINITY, '5', true, {}])(
    'refuses latencyMs %j',
    (latencyMs) => {
      expectOnlyIssue(validateEvent(validEvent({ latencyMs }), CTX), 'latencyMs', /milliseconds/);
    },
  );

  it('collects every problem of one event, not just the first', () => {
    const result = validateEvent(
      {
        id: '',
        timestamp: 'yesterday',
        userId: 7,
        modelId: 'x'.repeat(600),
        inputTokens: -1,
        outputTokens: 1.5,
        cacheReadTokens: 'many',
        status: 'weird',
        latencyMs: -5,
        tags: { 'bad key': 'v' },
        colour: 'blue',
      },
      CTX,
    );
    expect(fieldsOf(result).sort()).toEqual(
      [
        'colour',
        'id',
        'timestamp',
        'userId',
        'appId',
        'modelId',
        'inputTokens',
        'outputTokens',
        'cacheReadTokens',
        'latencyMs',
        'status',
        'tags.bad key',
      ].sort(),
    );
  });
});

describe('validateEvent: token counts', () => {
  const TOKEN_FIELDS = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens'];

  it.each(TOKEN_FIELDS)('accepts 0 and the 1e9 cap in %s', (field) => {
    expect(accepted(validateEvent(validEvent({ [field]: 0 }), CTX))[field as 'inputTokens']).toBe(
      0,
    );
    expect(
      accepted(validateEvent(validEvent({ [field]: 1_000_000_000 }), CTX))[field as 'inputTokens'],
    ).toBe(1_000_000_000);
  });

  it.each(TOKEN_FIELDS)('folds -0 into +0 in %s', (field) => {
    const event = accepted(validateEvent(validEvent({ [field]: -0 }), CTX));
    expect(Object.is(event[field as 'inputTokens'], 0)).toBe(true);
  });

  it.each(TOKEN_FIELDS)('refuses negative counts in %s', (field) => {
    for (const bad of [-1, -1_000_000, Number.MIN_SAFE_INTEGER]) {
      expectOnlyIssue(validateEvent(validEvent({ [field]: bad }), CTX), field, />= 0/);
    }
  });

  it.each(TOKEN_FIELDS)('refuses fractional counts in %s', (field) => {
    for (const bad of [0.5, 1.000001, 99.99, -0.5]) {
      expectOnlyIssue(validateEvent(validEvent({ [field]: bad }), CTX), field, /integer/);
    }
  });

  it.each(TOKEN_FIELDS)('refuses counts above the cap in %s', (field) => {
    for (const bad of [1_000_000_001, 2 ** 53, 2 ** 53 + 2, 1e21, 1e300]) {
      expectOnlyIssue(
        validateEvent(validEvent({ [field]: bad }), CTX),
        field,
        /at most 1000000000/,
      );
    }
  });

  it.each(TOKEN_FIELDS)('refuses NaN, infinities and non-numbers in %s', (field) => {
    for (const bad of [
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      '100',
      null,
      true,
      [1],
      {},
      10n,
    ]) {
      expectOnlyIssue(validateEvent(validEvent({ [field]: bad }), CTX), field);
    }
  });

  it('defaults absent cache counts to 0 but requires input and output counts', () => {
    const event = accepted(validateEvent(validEvent(), CTX));
    expect(event.cacheReadTokens).toBe(0);
    expect(event.cacheWriteTokens).toBe(0);
    expect(fieldsOf(validateEvent(without(validEvent(), 'inputTokens'), CTX))).toEqual([
      'inputTokens',
    ]);
    expect(fieldsOf(validateEvent(without(validEvent(), 'outputTokens'), CTX))).toEqual([
      'outputTokens',
    ]);
  });
});

describe('validateEvent: unknown fields and prototype keys', () => {
  it('refuses a field that is not in the contract, naming it', () => {
    const issues = issuesOf(validateEvent(validEvent({ prompt: 'hello', Cost: 1 }), CTX));
    expect(issues).toEqual([
      { field: 'prompt', reason: 'is not a field of the usage event (v1)' },
      { field: 'Cost', reason: 'is not a field of the usage event (v1)' },
    ]);
  });

  it('truncates a very long unknown field name to 64 characters', () => {
    const name = 'k'.repeat(5000);
    expect(fieldsOf(validateEvent(validEvent({ [name]: 1 }), CTX))).toEqual(['k'.repeat(64)]);
  });

  it('refuses a top-level "__proto__" and never reads fields through it', () => {
    const before = snapshotObjectPrototype();
    const body = JSON.parse(
      '{"id":"e1","timestamp":"2026-01-31T11:00:00Z","appId":"a","modelId":"m",' +
        '"inputTokens":1,"outputTokens":1,' +
        '"__proto__":{"userId":"from-proto","polluted":"yes","isAdmin":true}}',
    );
    expect(Object.hasOwn(body, '__proto__')).toBe(true);
    const issues = issuesOf(validateEvent(body, CTX));
    expect(issues.map((i) => i.field).sort()).toEqual(['__proto__', 'userId']);
    expect(issues.find((i) => i.field === '__proto__')?.reason).toBe(
      'is not a field of the usage event (v1)',
    );
    expect(snapshotObjectPrototype()).toEqual(before);
    expect(({} as Raw).polluted).toBeUndefined();
    expect(({} as Raw).isAdmin).toBeUndefined();
  });

  it.each(['__proto__', 'constructor', 'prototype'])(
    'refuses the reserved tag key %s and leaves Object.prototype unchanged',
    (key) => {
      const before = snapshotObjectPrototype();
      const body = JSON.parse(
        JSON.stringify(validEvent()).replace(
          /}$/,
          `,"tags":{"team":"ml","${key}":{"polluted":"yes"}}}`,
        ),
      );
      expect(Object.hasOwn(body.tags, key)).toBe(true);
      const issues = issuesOf(validateEvent(body, CTX));
      expect(issues).toEqual([{ field: `tags.${key}`, reason: 'is a reserved key name' }]);
      expect(snapshotObjectPrototype()).toEqual(before);
      expect(({} as Raw).polluted).toBeUndefined();
    },
  );

  it('refuses a string-valued "__proto__" tag too', () => {
    const body = JSON.parse(
      JSON.stringify(validEvent()).replace(/}$/, ',"tags":{"__proto__":"x"}}'),
    );
    expect(fieldsOf(validateEvent(body, CTX))).toEqual(['tags.__proto__']);
    expect(Object.getPrototypeOf({})).toBe(Object.prototype);
  });
});

describe('validateEvent: tags', () => {
  function tagsWith(n: number): Record<string, string> {
    const tags: Record<string, string> = {};
    for (let i = 0; i < n; i++) tags[`k${i}`] = `v${i}`;
    return tags;
  }

  it('accepts up to 16 tags and refuses 17', () => {
    expect(
      Object.keys(accepted(validateEvent(validEvent({ tags: tagsWith(16) }), CTX)).tags ?? {}),
    ).toHaveLength(16);
    expectOnlyIssue(
      validateEvent(validEvent({ tags: tagsWith(17) }), CTX),
      'tags',
      /at most 16 keys/,
    );
  });

  it.each([[[]], ['team=ml'], [7], [true]])('refuses tags that are not an object: %j', (tags) => {
    expectOnlyIssue(validateEvent(validEvent({ tags }), CTX), 'tags', /object of strings/);
  });

  it.each(['team', 'A', '9', 'a.b', 'a:b', 'a-b', 'a_b', 'Team.Env:stage-1_x', 'k'.repeat(64)])(
    'accepts the tag key %s',
    (key) => {
      expect(accepted(validateEvent(validEvent({ tags: { [key]: 'v' } }), CTX)).tags?.[key]).toBe(
        'v',
      );
    },
  );

  it.each(['', 'has space', 'a/b', 'a=b', 'a,b', 'ä', 'a\u0000b', 'emoji🚀', 'k'.repeat(65)])(
    'refuses the tag key %j',
    (key) => {
      expectOnlyIssue(
        validateEvent(validEvent({ tags: { [key]: 'v' } }), CTX),
        `tags.${key.slice(0, 64)}`,
        /key must be 1-64 characters of A-Z a-z 0-9 _ . : -/,
      );
    },
  );

  it('accepts tag values up to 256 characters, empty included, and refuses 257', () => {
    expect(accepted(validateEvent(validEvent({ tags: { a: '' } }), CTX)).tags?.a).toBe('');
    expect(
      accepted(validateEvent(validEvent({ tags: { a: 'v'.repeat(256) } }), CTX)).tags?.a,
    ).toHaveLength(256);
    expectOnlyIssue(
      validateEvent(validEvent({ tags: { a: 'v'.repeat(257) } }), CTX),
      'tags.a',
      /at most 256 characters/,
    );
  });

  it('refuses control characters in tag values', () => {
    for (const ch of ['\u0000', '\n', '\r', '\t', '\u007f']) {
      expectOnlyIssue(
        validateEvent(validEvent({ tags: { a: `x${ch}y` } }), CTX),
        'tags.a',
        /without control characters/,
      );
    }
  });

  it.each([[1], [null], [true], [{}], [['x']]])('refuses the non-string tag value %j', (v) => {
    expectOnlyIssue(validateEvent(validEvent({ tags: { a: v } }), CTX), 'tags.a', /string/);
  });

  it('reports every bad tag of one event', () => {
    const result = validateEvent(validEvent({ tags: { ok: 'v', 'bad key': 'v', n: 1 } }), CTX);
    expect(fieldsOf(result)).toEqual(['tags.bad key', 'tags.n']);
  });
});

describe('validateEvent: timestamps', () => {
  const at = (timestamp: unknown, ctx: ValidationContext = CTX) =>
    validateEvent(validEvent({ timestamp }), ctx);

  it.each([
    ['2026-01-31T11:00:00Z', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31T11:00:00z', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31t11:00:00Z', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31 11:00:00Z', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31T13:00:00+02:00', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31T05:30:00-05:30', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31T11:00:00+00:00', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31T11:00:00-00:00', Date.UTC(2026, 0, 31, 11)],
    ['2026-01-31T11:00:00.5Z', Date.UTC(2026, 0, 31, 11, 0, 0, 500)],
    ['2026-01-31T11:00:00.123Z', Date.UTC(2026, 0, 31, 11, 0, 0, 123)],
    ['2026-01-31T11:00:00.123456789Z', Date.UTC(2026, 0, 31, 11, 0, 0, 123)],
    ['2026-01-30T23:59:59.999Z', Date.UTC(2026, 0, 30, 23, 59, 59, 999)],
    ['2026-02-01T00:04:00+00:00', Date.UTC(2026, 1, 1, 0, 4)],
  ])('parses the RFC 3339 date-time %s', (timestamp, expected) => {
    const ctx = { nowMs: Date.UTC(2026, 1, 1) };
    expect(accepted(at(timestamp, ctx)).timestampMs).toBe(expected);
  });

  it('crosses the day boundary with an offset', () => {
    // 2026-02-01T01:00+03:00 is 2026-01-31T22:00Z.
    expect(accepted(at('2026-02-01T01:00:00+03:00', { nowMs: NOW + DAY_MS })).timestampMs).toBe(
      Date.UTC(2026, 0, 31, 22),
    );
  });

  it.each([
    '2026-01-31T11:00:00',
    '2026-01-31T11:00',
    '2026-01-31 11:00:00',
    '2026-01-31T11:00:00.123',
  ])('refuses a date-time without a zone: %s', (timestamp) => {
    expectOnlyIssue(at(timestamp), 'timestamp', /must include a time zone/);
  });

  it.each([
    '2026-02-30T10:00:00Z',
    '2026-02-29T10:00:00Z', // 2026 is not a leap year
    '2026-04-31T10:00:00Z',
    '2026-13-01T10:00:00Z',
    '2026-00-10T10:00:00Z',
    '2026-01-00T10:00:00Z',
    '2026-01-32T10:00:00Z',
    '2026-01-31T24:00:00Z',
    '2026-01-31T23:60:00Z',
    '2026-01-31T23:59:60Z',
    '2026-01-31T11:00:60+01:00',
  ])('refuses the impossible calendar date-time %s', (timestamp) => {
    const ctx = { nowMs: Date.UTC(2026, 2, 1) };
    expectOnlyIssue(at(timestamp, ctx), 'timestamp', /not a valid calendar date-time/);
  });

  it('accepts a real leap day', () => {
    const ctx = { nowMs: Date.UTC(2028, 2, 1) };
    expect(accepted(at('2028-02-29T12:00:00Z', ctx)).timestampMs).toBe(Date.UTC(2028, 1, 29, 12));
  });

  it.each(['2026-01-31T11:00:00+25:00', '2026-01-31T11:00:00+05:99'])(
    'refuses an impossible offset %s',
    (timestamp) => {
      expectOnlyIssue(at(timestamp), 'timestamp', /not a valid date-time/);
    },
  );

  it.each([
    '',
    'yesterday',
    '2026-01-31',
    '2026/01/31 11:00:00Z',
    'Sat, 31 Jan 2026 11:00:00 GMT',
    '2026-01-31T11:00:00+0200',
    '2026-1-31T11:00:00Z',
    ' 2026-01-31T11:00:00Z',
    '2026-01-31T11:00:00Z ',
    '+002026-01-31T11:00:00Z',
    '2026-01-31T11:00:00.Z',
  ])('refuses the non-RFC-3339 string %j', (timestamp) => {
    expectOnlyIssue(at(timestamp), 'timestamp', /RFC 3339/);
  });

  it.each([[true], [{}], [[NOW]], [null]])('refuses a timestamp of type %j', (timestamp) => {
    expectOnlyIssue(at(timestamp), 'timestamp', /RFC 3339 string or epoch milliseconds/);
  });

  it('accepts epoch milliseconds as sent', () => {
    expect(accepted(at(NOW - 1234)).timestampMs).toBe(NOW - 1234);
    expect(accepted(at(NOW)).timestampMs).toBe(NOW);
  });

  it.each([-1, NOW + 0.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])(
    'refuses the epoch-ms number %d',
    (timestamp) => {
      expectOnlyIssue(at(timestamp), 'timestamp', /non-negative integer of epoch milliseconds/);
    },
  );

  it('detects epoch seconds sent instead of milliseconds', () => {
    for (const secondsAgo of [0, 1, 3600, 10 * 86_400, 34 * 86_400]) {
      const seconds = Math.floor(NOW / 1000) - secondsAgo;
      expectOnlyIssue(at(seconds), 'timestamp', /looks like epoch seconds/);
    }
    // A few seconds ahead of the server (client clock skew) is still seconds.
    expectOnlyIssue(at(Math.floor(NOW / 1000) + 60), 'timestamp', /looks like epoch seconds/);
  });

  it('treats a small number that cannot be recent seconds as (old) milliseconds', () => {
    // 36 days ago in seconds, ×1000, is outside the window: it is read as ms from 1970.
    const seconds = Math.floor((NOW - 36 * DAY_MS) / 1000);
    expectOnlyIssue(at(seconds), 'timestamp', /more than 35 days in the past/);
    expectOnlyIssue(at(0), 'timestamp', /more than 35 days in the past/);
    expectOnlyIssue(at(1), 'timestamp', /more than 35 days in the past/);
  });

  it('accepts exactly 35 days in the past and refuses 1 ms more', () => {
    const edge = NOW - 35 * DAY_MS;
    expect(accepted(at(edge)).timestampMs).toBe(edge);
    expectOnlyIssue(at(edge - 1), 'timestamp', /more than 35 days in the past/);
    expect(accepted(at(new Date(edge).toISOString())).timestampMs).toBe(edge);
    expectOnlyIssue(
      at(new Date(edge - 1).toISOString()),
      'timestamp',
      /more than 35 days in the past/,
    );
  });

  it('accepts exactly 5 minutes in the future and refuses 1 ms more', () => {
    const edge = NOW + 5 * 60_000;
    expect(accepted(at(edge)).timestampMs).toBe(edge);
    expectOnlyIssue(at(edge + 1), 'timestamp', /more than 5 minutes in the future/);
    expect(accepted(at('2026-01-31T12:05:00Z')).timestampMs).toBe(edge);
    expectOnlyIssue(at('2026-01-31T12:05:00.001Z'), 'timestamp', /5 minutes in the future/);
    // The window applies to the instant, not the wall-clock digits: 13:04+01:00 is 12:04Z.
    expect(accepted(at('2026-01-31T13:04:00+01:00')).timestampMs).toBe(NOW + 4 * 60_000);
    expectOnlyIssue(at('2026-01-31T12:04:00-01:00'), 'timestamp', /in the future/);
  });

  it('follows the injected clock, not the real one', () => {
    const farFuture = { nowMs: Date.UTC(2031, 5, 15, 8) };
    expect(accepted(at('2031-06-15T07:59:59Z', farFuture)).timestampMs).toBe(
      Date.UTC(2031, 5, 15, 7, 59, 59),
    );
    expectOnlyIssue(at('2026-01-31T11:00:00Z', farFuture), 'timestamp', /35 days/);
  });
});

describe('validateEvent: API key bound to an app', () => {
  const bound = { nowMs: NOW, boundAppId: 'checkout' };

  it('fills in the bound app when the event has none', () => {
    expect(accepted(validateEvent(without(validEvent(), 'appId'), bound)).appId).toBe('checkout');
  });

  it('accepts the bound app named explicitly', () => {
    expect(accepted(validateEvent(validEvent({ appId: 'checkout' }), bound)).appId).toBe(
      'checkout',
    );
  });

  it('refuses another app', () => {
    expectOnlyIssue(
      validateEvent(validEvent({ appId: 'search' }), bound),
      'appId',
      /may only send events for app "checkout"/,
    );
  });

  it('is case-sensitive about the app', () => {
    expectOnlyIssue(validateEvent(validEvent({ appId: 'Checkout' }), bound), 'appId');
  });

  it('does not paper over a present but invalid appId', () => {
    expectOnlyIssue(validateEvent(validEvent({ appId: null }), bound), 'appId', /string/);
    expectOnlyIssue(validateEvent(validEvent({ appId: '' }), bound), 'appId', /empty/);
  });

  it('requires appId when the key is not bound', () => {
    expectOnlyIssue(validateEvent(without(validEvent(), 'appId'), CTX), 'appId', /string/);
  });
});

describe('validateBatch', () => {
  function events(n: number, make: (i: number) => unknown = (i) => validEvent({ id: `e${i}` })) {
    return Array.from({ length: n }, (_, i) => make(i));
  }

  it('accepts {"events": [...]} in order', () => {
    const result = validateBatch({ events: events(3) }, CTX);
    expect(result.issues).toEqual([]);
    expect(result.events.map((e) => e.id)).toEqual(['e0', 'e1', 'e2']);
  });

  it('accepts a single event object', () => {
    const result = validateBatch(validEvent({ id: 'solo' }), CTX);
    expect(result.issues).toEqual([]);
    expect(result.events.map((e) => e.id)).toEqual(['solo']);
  });

  it('reports the issues of a single event without an index', () => {
    const result = validateBatch(validEvent({ inputTokens: -1 }), CTX);
    expect(result.events).toEqual([]);
    expect(result.issues).toEqual([{ field: 'inputTokens', reason: 'must be >= 0, got -1' }]);
    expect(Object.hasOwn(result.issues[0] as object, 'index')).toBe(false);
  });

  it('reports the issues of a batch with the index of each event', () => {
    const body = {
      events: events(8, (i) =>
        i === 0
          ? validEvent({ id: 'e0', status: 'nope' })
          : i === 3
            ? validEvent({ id: '', outputTokens: 0.5 })
            : i === 7
              ? 'not an event'
              : validEvent({ id: `e${i}` }),
      ),
    };
    const result = validateBatch(body, CTX);
    expect(result.events).toEqual([]);
    expect(result.issues).toEqual([
      { index: 0, field: 'status', reason: 'must be one of "ok", "error", "no_usage", "denied"' },
      { index: 3, field: 'id', reason: 'must not be empty' },
      { index: 3, field: 'outputTokens', reason: 'must be an integer, got 0.5' },
      { index: 7, field: '', reason: 'event must be an object, got a string' },
    ]);
  });

  it('indexes even a batch of one', () => {
    const result = validateBatch({ events: [validEvent({ userId: '' })] }, CTX);
    expect(result.issues).toEqual([{ index: 0, field: 'userId', reason: 'must not be empty' }]);
  });

  it('is atomic: one bad event refuses the whole request', () => {
    const body = { events: [...events(5), validEvent({ id: 'bad', inputTokens: 'x' })] };
    const result = validateBatch(body, CTX);
    expect(result.events).toEqual([]);
    expect(result.issues.map((i) => i.index)).toEqual([5]);
  });

  it('refuses an empty batch', () => {
    expect(validateBatch({ events: [] }, CTX)).toEqual({
      events: [],
      issues: [{ field: 'events', reason: 'must contain at least one event' }],
    });
  });

  it('accepts exactly 1000 events and refuses 1001', () => {
    expect(MAX_EVENTS_PER_REQUEST).toBe(1000);
    const ok = validateBatch({ events: events(1000) }, CTX);
    expect(ok.issues).toEqual([]);
    expect(ok.events).toHaveLength(1000);
    expect(validateBatch({ events: events(1001) }, CTX)).toEqual({
      events: [],
      issues: [{ field: 'events', reason: 'must contain at most 1000 events, got 1001' }],
    });
  });

  it('refuses keys next to "events", naming each', () => {
    const result = validateBatch({ events: events(1), apiKey: 'x', version: 1 }, CTX);
    expect(result.events).toEqual([]);
    expect(result.issues).toEqual([
      { field: 'apiKey', reason: 'is not allowed next to "events"' },
      { field: 'version', reason: 'is not allowed next to "events"' },
    ]);
  });

  it.each([[{}], ['x'], [null], [1]])('refuses "events" that is not an array: %j', (value) => {
    expect(validateBatch({ events: value }, CTX)).toEqual({
      events: [],
      issues: [{ field: 'events', reason: 'must be an array of events' }],
    });
  });

  it.each([
    [null, 'null'],
    [[validEvent()], 'an array'],
    ['{}', 'a string'],
    [3, 'a number'],
  ])('refuses the body %j', (body, described) => {
    expect(validateBatch(body, CTX)).toEqual({
      events: [],
      issues: [
        { field: '', reason: `body must be an event object or {"events":[...]}, got ${described}` },
      ],
    });
  });

  it('caps the reported issues at 100 and summarises the rest in one line', () => {
    // 1000 events with 2 issues each: 2000 issues, 100 listed, 1900 summarised.
    const body = {
      events: events(1000, (i) => validEvent({ id: `e${i}`, inputTokens: -1, status: 'x' })),
    };
    const result = validateBatch(body, CTX);
    expect(result.events).toEqual([]);
    expect(result.issues).toHaveLength(101);
    const listed = result.issues.slice(0, 100);
    expect(listed.every((i) => typeof i.index === 'number')).toBe(true);
    expect(listed.map((i) => i.index)).toEqual(
      Array.from({ length: 100 }, (_, k) => Math.floor(k / 2)),
    );
    expect(result.issues[100]).toEqual({ field: '', reason: '1900 more issues not listed' });
  });

  it('lists exactly 100 issues without a summary line', () => {
    const body = { events: events(100, (i) => validEvent({ id: `e${i}`, status: 'x' })) };
    const result = validateBatch(body, CTX);
    expect(result.issues).toHaveLength(100);
    expect(result.issues.every((i) => i.field === 'status')).toBe(true);
  });

  it('says "1 more issue" worth of summary for 101 issues', () => {
    const body = { events: events(101, (i) => validEvent({ id: `e${i}`, status: 'x' })) };
    const result = validateBatch(body, CTX);
    expect(result.issues).toHaveLength(101);
    expect(result.issues[100]?.reason).toMatch(/^1 more issue/);
  });

  it('passes the bound app to every event', () => {
    const result = validateBatch(
      { events: [without(validEvent({ id: 'a' }), 'appId'), validEvent({ id: 'b', appId: 'x' })] },
      { nowMs: NOW, boundAppId: 'x' },
    );
    expect(result.issues).toEqual([]);
    expect(result.events.map((e) => e.appId)).toEqual(['x', 'x']);
  });

  it('treats a body with an own "events" key as a batch even if it looks like an event', () => {
    const result = validateBatch({ ...validEvent(), events: [validEvent()] }, CTX);
    expect(result.events).toEqual([]);
    expect(result.issues.map((i) => i.reason)).toContain('is not allowed next to "events"');
  });
});

describe('validateEvent: generated cases', () => {
  const ID_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/ é🚀"\',=+';
  const KEY_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-';

  function gen(seed: number) {
    const r = rng(seed);
    const int = (lo: number, hi: number) => lo + Math.floor(r() * (hi - lo + 1));
    const str = (chars: string, min: number, max: number) => {
      const codepoints = [...chars];
      let s = '';
      const n = int(min, max);
      while (s.length < n) {
        const c = codepoints[int(0, codepoints.length - 1)] as string;
        if (s.length + c.length > max) break;
        s += c;
      }
      return s.length >= min ? s : 'x'.repeat(min);
    };
    const tokens = () => [0, 1, int(0, 1000), int(0, 1e6), int(0, 1e9), 1e9][int(0, 5)] as number;
    return { r, int, str, tokens };
  }

  function randomValidEvent(seed: number): { raw: Raw; timestampMs: number } {
    const { r, int, str, tokens } = gen(seed);
    const timestampMs = NOW - int(0, 35 * DAY_MS) + int(0, 5 * 60_000) * (r() < 0.1 ? 1 : 0);
    const raw: Raw = {
      id: str(ID_CHARS, 1, 128),
      timestamp: r() < 0.5 ? timestampMs : new Date(timestampMs).toISOString(),
      userId: str(ID_CHARS, 1, 256),
      appId: str(ID_CHARS, 1, 256),
      modelId: str(ID_CHARS, 1, 512),
      inputTokens: tokens(),
      outputTokens: tokens(),
    };
    if (r() < 0.5) raw.provider = str(ID_CHARS, 1, 64);
    if (r() < 0.5) raw.cacheReadTokens = tokens();
    if (r() < 0.5) raw.cacheWriteTokens = tokens();
    if (r() < 0.5) raw.latencyMs = r() * 86_400_000;
    if (r() < 0.5) raw.status = r() < 0.5 ? 'ok' : 'error';
    if (r() < 0.5) {
      const tags: Record<string, string> = {};
      const n = int(1, 16);
      for (let i = 0; i < n; i++) tags[`${str(KEY_CHARS, 1, 60)}${i}`] = str(ID_CHARS, 0, 256);
      raw.tags = tags;
    }
    return { raw, timestampMs };
  }

  it('accepts 500 random valid events and round-trips every field', () => {
    for (let seed = 1; seed <= 500; seed++) {
      const { raw, timestampMs } = randomValidEvent(seed);
      const result = validateEvent(raw, CTX);
      if (!result.ok) throw new Error(`seed ${seed}: ${JSON.stringify(result.issues)}`);
      const e = result.event;
      expect(e.id).toBe(raw.id);
      expect(e.timestampMs).toBe(timestampMs);
      expect(e.userId).toBe(raw.userId);
      expect(e.appId).toBe(raw.appId);
      expect(e.modelId).toBe(raw.modelId);
      expect(e.provider).toBe((raw.provider as string | undefined)?.toLowerCase());
      expect(e.inputTokens).toBe(raw.inputTokens);
      expect(e.outputTokens).toBe(raw.outputTokens);
      expect(e.cacheReadTokens).toBe(raw.cacheReadTokens ?? 0);
      expect(e.cacheWriteTokens).toBe(raw.cacheWriteTokens ?? 0);
      expect(e.latencyMs).toBe(raw.latencyMs);
      expect(e.status).toBe(raw.status ?? 'ok');
      expect(e.tags === undefined ? undefined : { ...e.tags }).toEqual(raw.tags);
    }
  });

  it('refuses 500 random events with one broken field, naming exactly that field', () => {
    const breakers: Array<[string, (int: (lo: number, hi: number) => number) => unknown]> = [
      ['id', (int) => ['', 'x'.repeat(129), int(0, 9), `a\n${int(0, 9)}`][int(0, 3)]],
      ['userId', (int) => ['', 'x'.repeat(257), null, '\u0000'][int(0, 3)]],
      ['appId', (int) => ['', 'x'.repeat(257), 5, '\u007f'][int(0, 3)]],
      ['modelId', (int) => ['', 'x'.repeat(513), [], '\t'][int(0, 3)]],
      ['provider', (int) => ['', 'x'.repeat(65), 1, '\r'][int(0, 3)]],
      [
        'inputTokens',
        (int) => [-int(1, 1e9), int(0, 1e6) + 0.5, 1e9 + int(1, 1e6), '1'][int(0, 3)],
      ],
      ['outputTokens', (int) => [-1, 0.1, 2 ** 53, null][int(0, 3)]],
      ['cacheReadTokens', (int) => [-1, 2.5, 1e10, false][int(0, 3)]],
      ['cacheWriteTokens', (int) => [-7, 3.3, 1e12, {}][int(0, 3)]],
      ['latencyMs', (int) => [-1, 86_400_001, 'fast', Number.NaN][int(0, 3)]],
      ['status', (int) => ['OK', 'fail', 1, ''][int(0, 3)]],
      [
        'timestamp',
        (int) =>
          [
            NOW - 36 * DAY_MS,
            NOW + 6 * 60_000,
            '2026-01-31T11:00:00',
            Math.floor(NOW / 1000) - int(0, 1000),
          ][int(0, 3)],
      ],
      ['tags', (int) => [[], 'x', int(0, 9), true][int(0, 3)]],
    ];
    for (let seed = 1001; seed <= 1500; seed++) {
      const { raw } = randomValidEvent(seed);
      const { int } = gen(seed * 7);
      const [field, make] = breakers[int(0, breakers.length - 1)] as (typeof breakers)[number];
      const broken = { ...raw, [field]: make(int) };
      const result = validateEvent(broken, CTX);
      if (result.ok) throw new Error(`seed ${seed}: ${field}=${String(broken[field])} accepted`);
      expect(result.issues.map((i) => i.field)).toEqual([field]);
    }
  });

  it('never throws, whatever the input', () => {
    const r = rng(42);
    const values: unknown[] = [
      undefined,
      null,
      true,
      0,
      -0,
      Number.NaN,
      1e308,
      '',
      'x',
      [],
      {},
      10n,
      Symbol('s'),
      () => 1,
      new Date(NOW),
      Object.create(null),
    ];
    const pick = () => values[Math.floor(r() * values.length)];
    const fields = [
      'id',
      'timestamp',
      'userId',
      'appId',
      'modelId',
      'provider',
      'inputTokens',
      'outputTokens',
      'cacheReadTokens',
      'cacheWriteTokens',
      'latencyMs',
      'status',
      'tags',
      'other',
    ];
    for (let n = 0; n < 2000; n++) {
      const raw: Raw = validEvent();
      for (const f of fields) if (r() < 0.3) raw[f] = pick();
      if (r() < 0.2) raw.tags = { a: pick(), b: pick() };
      expect(() => validateEvent(raw, CTX)).not.toThrow();
      expect(() => validateBatch({ events: [raw, pick()] }, CTX)).not.toThrow();
      expect(() => validateBatch(pick(), CTX)).not.toThrow();
    }
  });
});
