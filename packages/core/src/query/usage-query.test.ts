import { describe, expect, it } from 'vitest';
import { TokenwatchError, type ValidationIssue } from '../errors.js';
import {
  bucketStart,
  type Interval,
  MAX_QUERY_ROWS,
  type ParseContext,
  parseUsageQuery,
  RESOLUTION_MS,
  type UsageQuery,
} from './usage-query.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** A server clock that is aligned to nothing: 2026-01-31T12:34:56.789Z. */
const NOW = Date.UTC(2026, 0, 31, 12, 34, 56, 789);
const CTX: ParseContext = { projectId: 'proj-1', nowMs: NOW, minuteRetentionMs: 7 * DAY_MS };

function parse(query: string | Record<string, string>, ctx: ParseContext = CTX): UsageQuery {
  return parseUsageQuery(new URLSearchParams(query), ctx);
}

function issuesOf(query: string, ctx: ParseContext = CTX): ValidationIssue[] {
  try {
    const parsed = parse(query, ctx);
    throw new Error(`expected invalid_query, got ${JSON.stringify(parsed)}`);
  } catch (err) {
    if (!(err instanceof TokenwatchError)) throw err;
    expect(err.code).toBe('invalid_query');
    expect(err.retryable).toBe(false);
    return err.details;
  }
}

function fieldsOf(query: string, ctx: ParseContext = CTX): string[] {
  return issuesOf(query, ctx).map((i) => i.field);
}

describe('parseUsageQuery: defaults', () => {
  it('queries the last 24 hours, totals per nothing, by total tokens', () => {
    expect(parse('')).toEqual({
      projectId: 'proj-1',
      fromMs: NOW - DAY_MS,
      toMs: NOW,
      interval: undefined,
      resolution: 'hour',
      groupBy: [],
      filters: {},
      tagFilter: undefined,
      orderBy: 'totalTokens',
      order: 'desc',
      limit: 1000,
    });
  });

  it('always takes the project from the context, never from the parameters', () => {
    expect(parse('', { ...CTX, projectId: 'other' }).projectId).toBe('other');
    expect(fieldsOf('projectId=evil')).toEqual(['projectId']);
    expect(fieldsOf('project=evil')).toEqual(['project']);
  });

  it('defaults "to" to now when only "from" is given', () => {
    const q = parse('from=2026-01-30');
    expect(q.fromMs).toBe(Date.UTC(2026, 0, 30));
    expect(q.toMs).toBe(NOW);
  });

  it('defaults "from" to one day before "to" when only "to" is given', () => {
    const q = parse('to=2026-01-20T06:00:00Z');
    expect(q.toMs).toBe(Date.UTC(2026, 0, 20, 6));
    expect(q.fromMs).toBe(Date.UTC(2026, 0, 19, 6));
  });

  it('treats empty from/to/interval/limit as absent', () => {
    const q = parse('from=&to=&interval=&limit=&orderBy=&order=&groupBy=');
    expect(q.fromMs).toBe(NOW - DAY_MS);
    expect(q.toMs).toBe(NOW);
    expect(q.interval).toBeUndefined();
    expect(q.limit).toBe(1000);
    expect(q.groupBy).toEqual([]);
  });
});

describe('parseUsageQuery: the parameter allowlist', () => {
  it('refuses an unknown parameter, naming it', () => {
    const issues = issuesOf('userid=alice');
    expect(issues).toEqual([{ field: 'userid', reason: 'is not a known query parameter' }]);
  });

  it('refuses typos of known parameters rather than widening the query', () => {
    for (const name of ['form', 'To', 'intervals', 'group_by', 'groupby', 'order_by', 'Limit']) {
      expect(fieldsOf(`${name}=x`)).toEqual([name]);
    }
  });

  it('truncates a very long unknown name to 64 characters', () => {
    expect(fieldsOf(`${'p'.repeat(500)}=1`)).toEqual(['p'.repeat(64)]);
  });

  it('accepts every documented parameter', () => {
    const q = parse(
      'from=2026-01-30&to=2026-01-31&interval=hour&groupBy=user&orderBy=requests&order=asc&limit=5&format=csv&user=a&app=b&model=c&provider=d&tag.team=ml',
    );
    expect(q.limit).toBe(5);
  });

  it.each(['constructor', 'toString', 'hasOwnProperty', '__proto__', 'valueOf'])(
    'refuses the Object.prototype name %s as an unknown parameter',
    (name) => {
      // FILTER_ALIASES is a plain object literal, so `FILTER_ALIASES[name]` finds inherited
      // members and the parameter is silently taken as a "filter" on a garbage dimension.
      expect(fieldsOf(`${name}=x`)).toEqual([name]);
    },
  );

  it('reports every problem at once, each naming its parameter', () => {
    const fields = fieldsOf(
      'colour=red&interval=week&limit=0&order=up&orderBy=vibes&groupBy=planet&from=soon',
    );
    expect(fields.sort()).toEqual(
      ['colour', 'interval', 'limit', 'order', 'orderBy', 'groupBy', 'from'].sort(),
    );
  });
});

describe('parseUsageQuery: filters', () => {
  it('maps aliases to their dimension and merges them', () => {
    const q = parse('userId=a&user=b&appId=c&app=d&modelId=e&model=f&provider=g');
    expect(q.filters).toEqual({
      user: ['a', 'b'],
      app: ['c', 'd'],
      model: ['e', 'f'],
      provider: ['g'],
    });
  });

  it('keeps every value of a repeated filter, in order', () => {
    expect(parse('user=alice&user=bob&user=carol').filters).toEqual({
      user: ['alice', 'bob', 'carol'],
    });
  });

  it('keeps values verbatim (case, spaces, commas, unicode)', () => {
    const q = parse({ model: 'us.anthropic.claude-sonnet-4-5-20250929-v1:0', user: 'Zoë, Jr. ' });
    expect(q.filters).toEqual({
      model: ['us.anthropic.claude-sonnet-4-5-20250929-v1:0'],
      user: ['Zoë, Jr. '],
    });
  });

  it('refuses empty filter values (they would silently widen the query)', () => {
    expect(issuesOf('user=&user=alice')).toEqual([{ field: 'user', reason: 'must not be empty' }]);
  });

  it('accepts 100 values of one filter and refuses 101', () => {
    const values = (n: number) => Array.from({ length: n }, (_, i) => `user=u${i}`).join('&');
    expect(parse(values(100)).filters.user).toHaveLength(100);
    expect(issuesOf(values(101))).toEqual([{ field: 'user', reason: 'at most 100 values' }]);
  });

  it.each(['tag.team=ml', 'tag:team=ml'])('parses the tag filter %s', (query) => {
    expect(parse(query).tagFilter).toEqual({ key: 'team', value: 'ml' });
  });

  it('accepts a tag key of 64 characters of the allowed charset', () => {
    const key = `${'a'.repeat(60)}.:-_`;
    expect(parse(`tag.${key}=v`).tagFilter).toEqual({ key, value: 'v' });
  });

  it.each(['tag.=x', 'tag.bad%20key=x', `tag.${'k'.repeat(65)}=x`, 'tag.a%2Fb=x', 'tag:ä=x'])(
    'refuses the invalid tag key in %s',
    (query) => {
      const [name] = [...new URLSearchParams(query).keys()];
      expect(issuesOf(query)).toEqual([{ field: name, reason: 'invalid tag key' }]);
    },
  );

  it('refuses a second tag filter', () => {
    expect(issuesOf('tag.team=ml&tag.env=prod')).toEqual([
      { field: 'tag.env', reason: 'only one tag filter is supported' },
    ]);
  });

  it('combines a tag filter with dimension filters', () => {
    const q = parse('tag.team=ml&user=alice');
    expect(q.tagFilter).toEqual({ key: 'team', value: 'ml' });
    expect(q.filters).toEqual({ user: ['alice'] });
  });
});

describe('parseUsageQuery: groupBy', () => {
  it('parses a comma-separated list with aliases, trimming and de-duplicating', () => {
    expect(parse({ groupBy: ' user , modelId,app,provider,userId,,' }).groupBy).toEqual([
      'user',
      'model',
      'app',
      'provider',
    ]);
  });

  it('accepts one tag dimension', () => {
    expect(parse('groupBy=tag:team,user').groupBy).toEqual(['tag:team', 'user']);
  });

  it('refuses two tag dimensions', () => {
    expect(issuesOf('groupBy=tag:team,tag:env')).toEqual([
      { field: 'groupBy', reason: 'only one tag dimension is supported' },
    ]);
  });

  it('refuses an unknown dimension, quoting it', () => {
    const issues = issuesOf('groupBy=user,planet');
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('groupBy');
    expect(issues[0]?.reason).toContain('"planet"');
  });

  it.each(['tag:', 'tag:bad key', 'tag.team', `tag:${'k'.repeat(65)}`])(
    'refuses the malformed tag dimension %j',
    (part) => {
      expect(fieldsOf(`groupBy=${encodeURIComponent(part)}`)).toEqual(['groupBy']);
    },
  );

  it.each(['constructor', 'toString', '__proto__', 'hasOwnProperty'])(
    'refuses groupBy=%s with invalid_query (not a TypeError)',
    (part) => {
      expect(fieldsOf(`groupBy=${part}`)).toEqual(['groupBy']);
    },
  );

  it('accepts a tag group and a tag filter on the same key', () => {
    const q = parse('groupBy=tag:team&tag.team=ml');
    expect(q.groupBy).toEqual(['tag:team']);
    expect(q.tagFilter).toEqual({ key: 'team', value: 'ml' });
  });

  it('refuses a tag group and a tag filter on different keys', () => {
    expect(issuesOf('groupBy=tag:team&tag.env=prod')).toEqual([
      { field: 'groupBy', reason: 'a tag group and a tag filter must use the same key' },
    ]);
  });
});

describe('parseUsageQuery: time range', () => {
  it.each([
    ['2026-01-30T10:00:00Z', Date.UTC(2026, 0, 30, 10)],
    ['2026-01-30T10:00:00.250Z', Date.UTC(2026, 0, 30, 10, 0, 0, 250)],
    ['2026-01-30T12:00:00+02:00', Date.UTC(2026, 0, 30, 10)],
    ['2026-01-30T05:00:00-05:00', Date.UTC(2026, 0, 30, 10)],
    ['2026-01-30', Date.UTC(2026, 0, 30)],
    [String(Date.UTC(2026, 0, 30, 10)), Date.UTC(2026, 0, 30, 10)],
  ])('parses from=%s', (from, expected) => {
    expect(parse({ from }).fromMs).toBe(expected);
  });

  it.each(['2026-01-30T10:00:00', 'yesterday', '1.5e12', '-1000', '2026-1-30', '30/01/2026'])(
    'refuses from=%s naming "from"',
    (from) => {
      expect(fieldsOf(new URLSearchParams({ from }).toString())).toEqual(['from']);
    },
  );

  it('refuses an unparsable "to" naming "to"', () => {
    expect(fieldsOf('to=later')).toEqual(['to']);
  });

  it.each([
    '2026-02-30',
    '2026-02-29',
    '2026-04-31',
    '2026-02-30T10:00:00Z',
    '2026-01-31T24:30:00Z',
  ])('refuses the impossible date from=%s instead of rolling it over', (from) => {
    // The event contract refuses 2026-02-30; a query must not silently read it as March 2.
    expect(fieldsOf(new URLSearchParams({ from, to: '2026-12-31' }).toString())).toEqual(['from']);
  });

  it('refuses from >= to', () => {
    expect(issuesOf('from=2026-01-30&to=2026-01-30')).toEqual([
      { field: 'from', reason: 'must be before "to"' },
    ]);
    expect(fieldsOf('from=2026-01-30&to=2026-01-29')).toEqual(['from']);
  });

  it('accepts a range of one millisecond', () => {
    const q = parse('from=1000&to=1001');
    expect([q.fromMs, q.toMs]).toEqual([1000, 1001]);
  });
});

describe('parseUsageQuery: interval and resolution', () => {
  it.each([
    ['minute', 'minute'],
    ['hour', 'hour'],
    ['day', 'day'],
    ['month', 'day'],
  ])('interval=%s reads the %s rollup', (interval, resolution) => {
    const q = parse({ interval, from: '2026-01-31T10:00:00Z' });
    expect(q.interval).toBe(interval);
    expect(q.resolution).toBe(resolution);
  });

  it('treats interval=none as no interval', () => {
    expect(parse('interval=none').interval).toBeUndefined();
  });

  it.each(['week', 'Hour', 'hourly', '1h'])('refuses interval=%s', (interval) => {
    expect(issuesOf(`interval=${interval}`)).toEqual([
      { field: 'interval', reason: 'must be one of minute, hour, day, month' },
    ]);
  });

  it('answers day-aligned totals from the day rollup', () => {
    const q = parse('from=2026-01-01&to=2026-02-01');
    expect(q.interval).toBeUndefined();
    expect(q.resolution).toBe('day');
  });

  it('answers totals of a range not aligned to days from the hour rollup', () => {
    expect(parse('from=2026-01-01&to=2026-01-31T12:00:00Z').resolution).toBe('hour');
    expect(parse('from=2026-01-01T01:00:00Z&to=2026-02-01').resolution).toBe('hour');
    // Midnight in another zone is not UTC midnight.
    expect(parse('from=2026-01-01T00:00:00%2B01:00&to=2026-02-01').resolution).toBe('hour');
    // The default range (now - 24 h .. now) is not aligned.
    expect(parse('').resolution).toBe('hour');
  });

  it('keeps interval=hour at hour resolution even for a day-aligned range', () => {
    expect(parse('from=2026-01-01&to=2026-01-03&interval=hour').resolution).toBe('hour');
  });

  it('accepts minute resolution back to exactly the retention edge', () => {
    const edge = NOW - 7 * DAY_MS;
    expect(parse(`interval=minute&from=${edge}`).resolution).toBe('minute');
  });

  it('refuses minute resolution older than the retention instead of answering empty', () => {
    const issues = issuesOf(`interval=minute&from=${NOW - 7 * DAY_MS - 1}`);
    expect(issues).toEqual([
      { field: 'from', reason: 'minute resolution is kept for 7 days; use interval=hour' },
    ]);
  });

  it('uses the configured minute retention', () => {
    const ctx = { ...CTX, minuteRetentionMs: 2 * DAY_MS };
    expect(issuesOf(`interval=minute&from=${NOW - 3 * DAY_MS}`, ctx)[0]?.reason).toContain(
      'kept for 2 days',
    );
    expect(parse(`interval=minute&from=${NOW - 2 * DAY_MS}`, ctx).resolution).toBe('minute');
  });

  it('refuses tags at minute resolution', () => {
    expect(issuesOf('interval=minute&tag.team=ml')).toEqual([
      { field: 'interval', reason: 'tags are kept at hour and day resolution' },
    ]);
    expect(fieldsOf('interval=minute&groupBy=tag:team')).toEqual(['interval']);
    expect(parse('interval=hour&groupBy=tag:team').resolution).toBe('hour');
  });

  it('refuses more than 50 000 minute buckets', () => {
    const ctx = { ...CTX, minuteRetentionMs: 90 * DAY_MS };
    expect(parse(`interval=minute&from=${NOW - 50_000 * MINUTE_MS}`, ctx).resolution).toBe(
      'minute',
    );
    expect(issuesOf(`interval=minute&from=${NOW - 50_001 * MINUTE_MS}`, ctx)).toEqual([
      { field: 'interval', reason: 'too many minute buckets; use interval=hour' },
    ]);
  });

  it('refuses more than 400 days of hour buckets', () => {
    const to = Date.UTC(2026, 0, 1);
    expect(parse(`interval=hour&from=${to - 9600 * HOUR_MS}&to=${to}`).resolution).toBe('hour');
    expect(issuesOf(`interval=hour&from=${to - 9601 * HOUR_MS}&to=${to}`)).toEqual([
      { field: 'interval', reason: 'too many hour buckets; use interval=day' },
    ]);
    // Day buckets over the same range are fine.
    expect(parse(`interval=day&from=${to - 9601 * HOUR_MS}&to=${to}`).resolution).toBe('day');
  });
});

describe('parseUsageQuery: order and limit', () => {
  it('orders by bucket ascending by default when there is an interval', () => {
    const q = parse('interval=day');
    expect([q.orderBy, q.order]).toEqual(['bucket', 'asc']);
  });

  it('orders by total tokens descending by default without an interval', () => {
    const q = parse('');
    expect([q.orderBy, q.order]).toEqual(['totalTokens', 'desc']);
  });

  it('accepts every order field, and "cost" as an alias of costUsd', () => {
    for (const f of [
      'totalTokens',
      'inputTokens',
      'outputTokens',
      'cacheReadTokens',
      'cacheWriteTokens',
      'requests',
      'errors',
      'costUsd',
      'unpricedTokens',
      'noUsageRequests',
      'deniedRequests',
    ]) {
      expect(parse({ orderBy: f }).orderBy).toBe(f);
    }
    expect(parse('orderBy=cost').orderBy).toBe('costUsd');
    expect(parse('orderBy=cost').order).toBe('desc');
  });

  it('refuses an unknown order field', () => {
    const issues = issuesOf('orderBy=vibes');
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('orderBy');
  });

  it('refuses orderBy=bucket without an interval', () => {
    expect(issuesOf('orderBy=bucket')).toEqual([
      { field: 'orderBy', reason: '"bucket" needs an interval' },
    ]);
    expect(parse('orderBy=bucket&interval=hour').orderBy).toBe('bucket');
  });

  it('accepts an explicit direction', () => {
    expect(parse('order=asc').order).toBe('asc');
    expect(parse('interval=day&order=desc').order).toBe('desc');
    expect(issuesOf('order=ASC')).toEqual([{ field: 'order', reason: 'must be asc or desc' }]);
  });

  it('accepts limits from 1 to 10 000', () => {
    expect(MAX_QUERY_ROWS).toBe(10_000);
    expect(parse('limit=1').limit).toBe(1);
    expect(parse('limit=10000').limit).toBe(10_000);
    expect(parse('limit=007').limit).toBe(7);
  });

  it.each(['0', '10001', '-1', '1.5', '1e3', 'ten', ' 5', '0x10', '99999999999999999999'])(
    'refuses limit=%j',
    (limit) => {
      expect(issuesOf(new URLSearchParams({ limit }).toString())).toEqual([
        { field: 'limit', reason: 'must be an integer from 1 to 10000' },
      ]);
    },
  );
});

describe('bucketStart', () => {
  const SIZES: Array<[Interval, number]> = [
    ['minute', MINUTE_MS],
    ['hour', HOUR_MS],
    ['day', DAY_MS],
  ];

  it('matches the rollup resolutions', () => {
    expect(RESOLUTION_MS).toEqual({ minute: MINUTE_MS, hour: HOUR_MS, day: DAY_MS });
  });

  it('floors a known instant', () => {
    const t = Date.UTC(2026, 0, 31, 12, 34, 56, 789);
    expect(bucketStart(t, 'minute')).toBe(Date.UTC(2026, 0, 31, 12, 34));
    expect(bucketStart(t, 'hour')).toBe(Date.UTC(2026, 0, 31, 12));
    expect(bucketStart(t, 'day')).toBe(Date.UTC(2026, 0, 31));
    expect(bucketStart(t, 'month')).toBe(Date.UTC(2026, 0, 1));
  });

  it('maps a bucket start to itself', () => {
    for (const [interval] of SIZES) {
      const start = bucketStart(NOW, interval);
      expect(bucketStart(start, interval)).toBe(start);
    }
    expect(bucketStart(Date.UTC(2026, 2, 1), 'month')).toBe(Date.UTC(2026, 2, 1));
  });

  it('puts the last millisecond in the bucket before the boundary', () => {
    expect(bucketStart(Date.UTC(2026, 1, 1) - 1, 'day')).toBe(Date.UTC(2026, 0, 31));
    expect(bucketStart(Date.UTC(2026, 1, 1) - 1, 'month')).toBe(Date.UTC(2026, 0, 1));
    expect(bucketStart(Date.UTC(2027, 0, 1) - 1, 'month')).toBe(Date.UTC(2026, 11, 1));
    expect(bucketStart(Date.UTC(2028, 2, 1) - 1, 'month')).toBe(Date.UTC(2028, 1, 1));
  });

  it('floors (not truncates) before 1970', () => {
    expect(bucketStart(-1, 'minute')).toBe(-MINUTE_MS);
    expect(bucketStart(-1, 'hour')).toBe(-HOUR_MS);
    expect(bucketStart(-1, 'day')).toBe(-DAY_MS);
    expect(bucketStart(-1, 'month')).toBe(Date.UTC(1969, 11, 1));
    expect(bucketStart(-DAY_MS, 'day')).toBe(-DAY_MS);
  });

  it('holds the floor properties for 5000 generated instants', () => {
    let seed = 12345;
    const next = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    for (let n = 0; n < 5000; n++) {
      const ms = Math.floor((next() - 0.3) * 4e12);
      for (const [interval, size] of SIZES) {
        const start = bucketStart(ms, interval);
        expect(Number.isInteger(start)).toBe(true);
        expect(((start % size) + size) % size).toBe(0);
        expect(start).toBeLessThanOrEqual(ms);
        expect(ms - start).toBeLessThan(size);
      }
      const month = bucketStart(ms, 'month');
      const d = new Date(ms);
      const m = new Date(month);
      expect(m.getUTCFullYear()).toBe(d.getUTCFullYear());
      expect(m.getUTCMonth()).toBe(d.getUTCMonth());
      expect([m.getUTCDate(), m.getUTCHours(), m.getUTCMinutes(), m.getUTCMilliseconds()]).toEqual([
        1, 0, 0, 0,
      ]);
      expect(month).toBeLessThanOrEqual(ms);
    }
  });
});
