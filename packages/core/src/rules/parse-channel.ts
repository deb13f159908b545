import type { ChannelConfig } from './rule.js';
import {
  checkEnum,
  checkString,
  checkUrl,
  describe,
  has,
  type Issues,
  isPlainObject,
} from './rule-input-checks.js';
import { RULE_LIMITS } from './rule-limits.js';

export const CHANNEL_TYPES: readonly ChannelConfig['type'][] = [
  'webhook',
  'slack',
  'email',
  'log',
  'sns',
];

const EMAIL =
  /^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?:localhost|[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+)$/;
const SNS_TOPIC_ARN = /^arn:aws(?:-[a-z]+)*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$/;

function parseChannel(raw: unknown, i: number, issues: Issues): ChannelConfig | undefined {
  const at = `channels[${i}]`;
  if (!isPlainObject(raw)) {
    issues.add(at, `must be an object with a type, got ${describe(raw)}`);
    return undefined;
  }
  const type = checkEnum(raw.type, `${at}.type`, CHANNEL_TYPES, issues);
  switch (type) {
    case undefined:
      return undefined;
    case 'webhook': {
      issues.unknownKeys(raw, at, ['type', 'url', 'secret']);
      const url = checkUrl(raw.url, `${at}.url`, issues, RULE_LIMITS.urlMaxLength);
      if (has(raw, 'secret')) {
        const secret = checkString(raw.secret, `${at}.secret`, issues, RULE_LIMITS.secretMaxLength);
        if (url === undefined || secret === undefined) return undefined;
        return { type, url, secret };
      }
      return url === undefined ? undefined : { type, url };
    }
    case 'slack': {
      issues.unknownKeys(raw, at, ['type', 'url']);
      const url = checkUrl(raw.url, `${at}.url`, issues, RULE_LIMITS.urlMaxLength);
      return url === undefined ? undefined : { type, url };
    }
    case 'email': {
      issues.unknownKeys(raw, at, ['type', 'to']);
      const to = raw.to;
      if (!Array.isArray(to)) {
        issues.add(`${at}.to`, `must be an array of email addresses, got ${describe(to)}`);
        return undefined;
      }
      if (to.length === 0 || to.length > RULE_LIMITS.maxEmailRecipients) {
        issues.add(
          `${at}.to`,
          `must have 1 to ${RULE_LIMITS.maxEmailRecipients} addresses, got ${to.length}`,
        );
        return undefined;
      }
      const addresses: string[] = [];
      let ok = true;
      to.forEach((a, j) => {
        const field = `${at}.to[${j}]`;
        const s = checkString(a, field, issues, RULE_LIMITS.emailMaxLength);
        if (s === undefined) {
          ok = false;
        } else if (!EMAIL.test(s)) {
          issues.add(
            field,
            `must be an email address such as ops@example.com, got ${JSON.stringify(s)}`,
          );
          ok = false;
        } else if (!addresses.includes(s)) {
          addresses.push(s);
        }
      });
      return ok ? { type, to: addresses } : undefined;
    }
    case 'log':
      issues.unknownKeys(raw, at, ['type']);
      return { type };
    case 'sns': {
      issues.unknownKeys(raw, at, ['type', 'topicArn']);
      const arn = checkString(raw.topicArn, `${at}.topicArn`, issues, 1_024);
      if (arn === undefined) return undefined;
      if (!SNS_TOPIC_ARN.test(arn)) {
        issues.add(
          `${at}.topicArn`,
          'must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts',
        );
        return undefined;
      }
      return { type, topicArn: arn };
    }
  }
}

/** A rule's `channels`: where its alerts go. */
export function parseChannels(value: unknown, issues: Issues): ChannelConfig[] | undefined {
  if (!Array.isArray(value)) {
    issues.add('channels', `must be an array of channels, got ${describe(value)}`);
    return undefined;
  }
  if (value.length > RULE_LIMITS.maxChannels) {
    issues.add(
      'channels',
      `must have at most ${RULE_LIMITS.maxChannels} channels, got ${value.length}`,
    );
    return undefined;
  }
  const channels: ChannelConfig[] = [];
  let ok = true;
  value.forEach((raw, i) => {
    const c = parseChannel(raw, i, issues);
    if (c === undefined) ok = false;
    else channels.push(c);
  });
  return ok ? channels : undefined;
}
