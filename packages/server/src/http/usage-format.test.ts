import { parseUsageQuery, type UsageQuery, type UsageRow } from '@tokenwatch/core';
import { describe, expect, it } from 'vitest';
import { usageRowsToCsv, usageRowToJson } from './usage-format.js';

const NOW = Date.UTC(2026, 0, 31, 12);

function query(params: string): UsageQuery {
  return parseUsageQuery(new URLSearchParams(params), {
    projectId: 'p1',
    nowMs: NOW,
    minuteRetentionMs: 7 * 86_400_000,
  });
}

function row(overrides: Partial<UsageRow> = {}): UsageRow {
  return {
    inputTokens: 1000,
    outputTokens: 500,
    cacheReadTokens: 200,
    cacheWriteTokens: 0,
    totalTokens: 1700,
    requests: 3,
    errors: 1,
    costNanoUsd: 7_750_000n,
    unpricedTokens: 0,
    unpricedRequests: 0,
    noUsageRequests: 2,
    deniedRequests: 4,
    ...overrides,
  };
}

/** A minimal RFC 4180 parser, to check that what we write reads back as the same cells. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let cells: string[] = [];
  let cell = '';
  let i = 0;
  let quoted = false;
  while (i < text.length) {
    const c = text[i] as string;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i += 2;
        continue;
      }
      if (c === '"') {
        quoted = false;
        i++;
        continue;
      }
      cell += c;
      i++;
      continue;
    }
    if (c === '"' && cell === '') {
      quoted = true;
      i++;
    } else if (c === ',') {
      cells.push(cell);
      cell = '';
      i++;
    } else if (c === '\r' && text[i + 1] === '\n') {
      cells.push(cell);
      rows.push(cells);
      cells = [];
      cell = '';
      i += 2;
    } else {
      if (c === '"' || c === '\n' || c === '\r')
        throw new Error(`bare ${JSON.stringify(c)} at ${i}`);
      cell += c;
      i++;
    }
  }
  if (quoted) throw new Error('unterminated quote');
  if (cell !== '' || cells.length > 0) throw new Error('missing final CRLF');
  return rows;
}

describe('usageRowToJson', () => {
  it('writes the measures with an exact cost string and a numeric USD cost', () => {
    expect(usageRowToJson(row())).toEqual({
      inputTokens: 1000,
      outputTokens: 500,
      cacheReadTokens: 200,
      cacheWriteTokens: 0,
      totalTokens: 1700,
      requests: 3,
      errors: 1,
      costUsd: 0.00775,
      costNanoUsd: '7750000',
      unpricedTokens: 0,
      unpricedRequests: 0,
      noUsageRequests: 2,
      deniedRequests: 4,
    });
  });

  it('adds only the dimensions the row has, the tag as tag:<key>, and the bucket as ISO UTC', () => {
    const json = usageRowToJson(
      row({
        user: 'alice',
        app: 'chat',
        model: 'gpt-4o',
        provider: 'openai',
        tag: { key: 'team', value: 'ml' },
        bucketMs: Date.UTC(2026, 0, 31, 11),
      }),
    );
    expect(Object.keys(json).slice(0, 6)).toEqual([
      'user',
      'app',
      'model',
      'provider',
      'tag:team',
      'bucket',
    ]);
    expect(json).toMatchObject({
      user: 'alice',
      app: 'chat',
      model: 'gpt-4o',
      provider: 'openai',
      'tag:team': 'ml',
      bucket: '2026-01-31T11:00:00.000Z',
    });
    expect(Object.keys(usageRowToJson(row({ user: 'a' })))).not.toContain('app');
  });

  it('keeps an empty dimension value (it is a real group)', () => {
    expect(usageRowToJson(row({ tag: { key: 'team', value: '' } }))['tag:team']).toBe('');
  });

  it('keeps the cost exact beyond 2^53 nano-USD in costNanoUsd, and JSON-serialisable', () => {
    const big = 123_456_789_012_345_678_901n;
    const json = usageRowToJson(row({ costNanoUsd: big }));
    expect(json.costNanoUsd).toBe('123456789012345678901');
    expect(json.costUsd).toBeCloseTo(123_456_789_012.3456, 0);
    expect(() => JSON.stringify(json)).not.toThrow();
  });

  it.each([
    [0n, 0],
    [1n, 0.000000001],
    [10_972_500n, 0.0109725],
    [1_500_000_000n, 1.5],
    [123_456_789_000n, 123.456789],
  ])('costUsd of %s nano-USD is %s', (nano, usd) => {
    expect(usageRowToJson(row({ costNanoUsd: nano })).costUsd).toBe(usd);
  });
});

describe('usageRowsToCsv', () => {
  it('writes a header of dimensions, bucket and measures, CRLF line ends', () => {
    const csv = usageRowsToCsv([], query('groupBy=user,model&interval=day'));
    expect(csv).toBe(
      'user,model,bucket,inputTokens,outputTokens,cacheReadTokens,cacheWriteTokens,totalTokens,requests,errors,costUsd,costNanoUsd,unpricedTokens,unpricedRequests,noUsageRequests,deniedRequests\r\n',
    );
  });

  it('omits bucket without an interval and names the tag column tag:<key>', () => {
    const csv = usageRowsToCsv(
      [row({ tag: { key: 'team', value: 'ml' }, user: 'u' })],
      query('groupBy=tag:team,user'),
    );
    const [header, line] = parseCsv(csv);
    expect(header?.slice(0, 3)).toEqual(['tag:team', 'user', 'inputTokens']);
    expect(line?.slice(0, 3)).toEqual(['ml', 'u', '1000']);
  });

  it('writes one line per row with the same values as the JSON', () => {
    const rows = [
      row({ user: 'alice', bucketMs: Date.UTC(2026, 0, 30) }),
      row({ user: 'bob', bucketMs: Date.UTC(2026, 0, 31), costNanoUsd: 1n, errors: 0 }),
    ];
    const parsed = parseCsv(usageRowsToCsv(rows, query('groupBy=user&interval=day')));
    expect(parsed).toHaveLength(3);
    expect(parsed[1]).toEqual([
      'alice',
      '2026-01-30T00:00:00.000Z',
      '1000',
      '500',
      '200',
      '0',
      '1700',
      '3',
      '1',
      '0.00775',
      '7750000',
      '0',
      '0',
      '2',
      '4',
    ]);
    expect(parsed[2]?.slice(0, 2)).toEqual(['bob', '2026-01-31T00:00:00.000Z']);
    expect(parsed[2]?.slice(-5)).toEqual(['1', '0', '0', '2', '4']);
    expect(Number(parsed[2]?.at(-6))).toBe(0.000000001);
  });

  it.each([
    ['a,b', '"a,b"'],
    ['say "hi"', '"say ""hi"""'],
    ['line1\nline2', '"line1\nline2"'],
    ['line1\r\nline2', '"line1\r\nline2"'],
    ["it's", `"it's"`],
    ['plain', 'plain'],
    ['Zoë 🚀', 'Zoë 🚀'],
  ])('escapes %j as %j and reads back unchanged', (value, cell) => {
    const csv = usageRowsToCsv([row({ user: value })], query('groupBy=user'));
    const line = csv.split('\r\n').slice(1).join('\r\n');
    expect(line.startsWith(`${cell},`)).toBe(true);
    expect(parseCsv(csv)[1]?.[0]).toBe(value);
  });

  it.each(['=1+2', '+1+2', '-1+2', '@SUM(A1)', '\tcmd', '\rcmd', '=HYPERLINK("http://x","y")'])(
    'defuses the formula %j with a leading quote',
    (value) => {
      const csv = usageRowsToCsv([row({ user: value, app: 'ok' })], query('groupBy=user,app'));
      const cell = parseCsv(csv)[1]?.[0];
      expect(cell).toBe(`'${value}`);
    },
  );

  it('defuses formulas in every text column: app, model, provider and tag values', () => {
    const csv = usageRowsToCsv(
      [
        row({
          user: 'u',
          app: '=a',
          model: '+m',
          provider: '-p',
          tag: { key: 'team', value: '@t' },
        }),
      ],
      query('groupBy=user,app,model,provider,tag:team'),
    );
    expect(parseCsv(csv)[1]?.slice(0, 5)).toEqual(['u', "'=a", "'+m", "'-p", "'@t"]);
  });

  it('does not touch a value that merely contains formula characters', () => {
    const csv = usageRowsToCsv([row({ user: 'a=b+c-d@e' })], query('groupBy=user'));
    expect(parseCsv(csv)[1]?.[0]).toBe('a=b+c-d@e');
  });

  it('writes an empty cell for an empty dimension value', () => {
    const csv = usageRowsToCsv([row({ user: '' })], query('groupBy=user'));
    expect(parseCsv(csv)[1]?.[0]).toBe('');
  });

  it('always produces a well-formed table for generated hostile values', () => {
    const alphabet = ['a', ',', '"', '\n', '\r', "'", '=', '+', '-', '@', '\t', ' ', 'é'];
    let s = 99;
    const next = () => {
      s = (s * 48271) % 2147483647;
      return s;
    };
    const rows: UsageRow[] = [];
    for (let i = 0; i < 300; i++) {
      const len = next() % 8;
      let v = '';
      for (let j = 0; j < len; j++) v += alphabet[next() % alphabet.length];
      rows.push(row({ user: v, app: `${i}` }));
    }
    const parsed = parseCsv(usageRowsToCsv(rows, query('groupBy=user,app')));
    expect(parsed).toHaveLength(301);
    for (let i = 0; i < rows.length; i++) {
      const cells = parsed[i + 1] as string[];
      expect(cells).toHaveLength(parsed[0]?.length as number);
      const user = rows[i]?.user as string;
      const expected = /^[=+\-@\t\r]/.test(user) ? `'${user}` : user;
      expect(cells[0]).toBe(expected);
      expect(cells[1]).toBe(`${i}`);
    }
  });
});
