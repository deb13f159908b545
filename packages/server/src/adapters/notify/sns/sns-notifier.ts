import {
  type MessageAttributeValue,
  PublishCommand,
  SNSClient,
  type SNSClientConfig,
} from '@aws-sdk/client-sns';
import { type AlertMessage, type Delivery, type Notifier, TokenwatchError } from '@tokenwatch/core';
import { formatAmount, renderAlert } from '../render-alert.js';

export interface SnsNotifierOptions {
  /** Endpoint override (a local endpoint in tests); AWS's own endpoint otherwise. */
  endpoint?: string | undefined;
  /** Static credentials (local endpoints); the SDK's default chain otherwise (the Lambda role). */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** Attempts per publish inside the SDK before the dispatcher's own backoff. Default 2. */
  maxAttempts?: number | undefined;
}

/** SNS: a subject is ASCII without line breaks and shorter than 100 characters. */
export const SNS_SUBJECT_MAX = 99;

/** The subject line made safe for SNS (email subscriptions show it as the mail's subject). */
export function snsSubject(message: AlertMessage): string {
  const ascii = renderAlert(message)
    .subject.replace(/…/g, '...')
    .normalize('NFKD')
    .replace(/[^\x20-\x7e]/g, (c) => (/\p{M}/u.test(c) ? '' : '?'))
    .trim();
  return ascii.length <= SNS_SUBJECT_MAX ? ascii : `${ascii.slice(0, SNS_SUBJECT_MAX - 3)}...`;
}

/** The plain-text body: headline, one fact per line, notes, link. Email and SMS show it as is. */
export function snsMessage(message: AlertMessage): string {
  const r = renderAlert(message);
  const lines = [r.headline, '', ...r.facts.map((f) => `${f.label}: ${f.value}`)];
  if (r.notes.length > 0) lines.push('', ...r.notes);
  if (r.url) lines.push('', r.url);
  lines.push('', `Alert ${message.alertId}`);
  return lines.join('\n');
}

/** "80%" for a percent level, the amount for an absolute one, "forecast" for the forecast. */
function levelLabel(message: AlertMessage): string {
  if (message.forecast) return 'forecast';
  if (message.level.percent !== undefined) return `${message.level.percent}%`;
  const amount = message.level.value ?? message.level.threshold;
  return message.rule.metric === 'costUsd'
    ? formatAmount('costUsd', amount, 'exact')
    : String(amount);
}

/**
 * Message attributes for subscription filter policies, e.g. `{"level": ["100%"]}` or
 * `{"user": ["alice"]}`. Ten at most (the limit SQS subscriptions impose); empty values are
 * left out (SNS refuses them).
 */
export function snsAttributes(message: AlertMessage): Record<string, MessageAttributeValue> {
  const out: Record<string, MessageAttributeValue> = {};
  const str = (name: string, value: string | undefined) => {
    if (value !== undefined && value !== '') out[name] = { DataType: 'String', StringValue: value };
  };
  str('project', message.projectId);
  str('rule', message.rule.id);
  str('metric', message.rule.metric);
  str('level', levelLabel(message));
  out.levelIndex = { DataType: 'Number', StringValue: String(message.level.index) };
  str('user', message.scope.user);
  str('app', message.scope.app);
  str('model', message.scope.model);
  str('provider', message.scope.provider);
  str('late', String(message.late));
  return out;
}

const PERMANENT = new Set([
  'AuthorizationErrorException',
  'NotFoundException',
  'InvalidParameterException',
  'InvalidParameterValueException',
  'InvalidSecurityException',
  'KMSDisabledException',
  'KMSNotFoundException',
  'KMSAccessDeniedException',
  'KMSInvalidStateException',
  'EndpointDisabledException',
]);

function regionOf(topicArn: string): string {
  return topicArn.split(':')[3] ?? 'us-east-1';
}

/**
 * Amazon SNS channel (`{ "type": "sns", "topicArn": "arn:aws:sns:…" }`): one Publish per
 * delivery with a readable subject and message, and message attributes that subscriptions can
 * filter on. SNS fans out to email, SMS, HTTP(S), SQS and Lambda subscribers.
 */
export function createSnsNotifier(options: SnsNotifierOptions = {}): Notifier & {
  close(): void;
} {
  const clients = new Map<string, SNSClient>();
  const clientFor = (region: string) => {
    let client = clients.get(region);
    if (!client) {
      const config: SNSClientConfig = { region, maxAttempts: options.maxAttempts ?? 2 };
      if (options.endpoint !== undefined) config.endpoint = options.endpoint;
      if (options.credentials !== undefined) config.credentials = options.credentials;
      client = new SNSClient(config);
      clients.set(region, client);
    }
    return client;
  };
  return {
    type: 'sns',
    async send(delivery: Delivery, signal: AbortSignal): Promise<void> {
      const channel = delivery.channel;
      if (channel.type !== 'sns')
        throw new TokenwatchError('internal', `sns notifier got a ${channel.type} channel`);
      const m = delivery.message;
      try {
        await clientFor(regionOf(channel.topicArn)).send(
          new PublishCommand({
            TopicArn: channel.topicArn,
            Subject: snsSubject(m),
            Message: snsMessage(m),
            MessageAttributes: snsAttributes(m),
            ...(channel.topicArn.endsWith('.fifo')
              ? { MessageGroupId: m.rule.id, MessageDeduplicationId: delivery.id.slice(0, 128) }
              : {}),
          }),
          { abortSignal: signal },
        );
      } catch (err) {
        const e = err as { name?: string; message?: string; $fault?: string };
        const permanent = e.name !== undefined && PERMANENT.has(e.name);
        throw new TokenwatchError(
          'unavailable',
          `SNS Publish to ${channel.topicArn} failed: ${e.name ?? 'Error'}: ${e.message ?? String(err)}`,
          {
            retryable: !permanent && (e.$fault !== 'client' || /Throttl/.test(e.name ?? '')),
            cause: err,
          },
        );
      }
    },
    close() {
      for (const c of clients.values()) c.destroy();
      clients.clear();
    },
  };
}
