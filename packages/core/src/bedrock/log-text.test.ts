import { describe, expect, it } from 'vitest';
import { splitLogText } from './log-text.js';

const a = { schemaType: 'ModelInvocationLog', requestId: 'a' };
const b = { schemaType: 'ModelInvocationLog', requestId: 'b', note: 'has } and " inside' };

describe('splitLogText', () => {
  it('JSON lines as S3 delivers them', () => {
    const text = `${JSON.stringify(a)}\n${JSON.stringify(b)}\n`;
    expect(splitLogText(text)).toEqual({ records: [a, b], problems: [] });
  });

  it('pretty-printed objects one after the other, and a JSON array', () => {
    const text = `${JSON.stringify(a, null, 2)}\n${JSON.stringify(b, null, 4)}`;
    expect(splitLogText(text).records).toEqual([a, b]);
    expect(splitLogText(`\uFEFF${JSON.stringify([a, b])}`).records).toEqual([a, b]);
  });

  it('CloudWatch Logs export lines, filter-log-events output, awslogs payloads, {records}', () => {
    const exported = `2025-03-11T00:38:02.123Z ${JSON.stringify(a)}\n2025-03-11T00:38:03.000Z ${JSON.stringify(b)}\n`;
    expect(splitLogText(exported)).toEqual({ records: [a, b], problems: [] });
    const filter = { events: [{ logStreamName: 's', timestamp: 1, message: JSON.stringify(a) }] };
    expect(splitLogText(JSON.stringify(filter)).records).toEqual([a]);
    const awslogs = {
      messageType: 'DATA_MESSAGE',
      logEvents: [
        { id: '1', timestamp: 1, message: JSON.stringify(a) },
        { id: '2', timestamp: 2, message: JSON.stringify(b) },
      ],
    };
    expect(splitLogText(JSON.stringify(awslogs)).records).toEqual([a, b]);
    expect(splitLogText(JSON.stringify({ records: [a, b] })).records).toEqual([a, b]);
  });

  it('garbage lines, broken JSON and a truncated tail are problems; good records survive', () => {
    const text = [
      JSON.stringify(a),
      'this is not json',
      '{"schemaType": oops}',
      JSON.stringify(b),
      '{"schemaType":"ModelInvocationLog","requestId":"c","input":{"inputTok',
    ].join('\n');
    const out = splitLogText(text);
    expect(out.records).toEqual([a, b]);
    expect(out.problems.map((p) => p.line)).toEqual([2, 3, 5]);
    expect(out.problems[2]?.reason).toMatch(/truncated/);
  });

  it('a log event whose message is not JSON is a problem', () => {
    const payload = { logEvents: [{ id: '1', timestamp: 1, message: 'START RequestId: x' }] };
    expect(splitLogText(JSON.stringify(payload))).toEqual({
      records: [],
      problems: [{ line: 1, reason: 'a log event message is not JSON' }],
    });
  });
});
