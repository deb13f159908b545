import type { ChannelConfig, Notifier } from '@tokenwatch/core';
import type { Logger } from '../../logging/logger.js';
import { createEmailNotifier, type SmtpConfig } from './email/email-notifier.js';
import { createLogNotifier } from './log/log-notifier.js';
import { createSlackNotifier } from './slack/slack-notifier.js';
import type { NetworkPolicy, Resolver } from './ssrf-guard.js';
import { createWebhookNotifier } from './webhook/webhook-notifier.js';

export interface NotifierRegistryOptions {
  logger: Logger;
  /** SMTP server for the email channel; without it there is no 'email' notifier. */
  email?: SmtpConfig;
  /** SSRF policy for webhook and Slack URLs (config `alerts.allowPrivateNetworks`). */
  policy: NetworkPolicy;
  /** Cap on one HTTP attempt, whatever the dispatcher's signal says. Default 30 s. */
  httpTimeoutMs?: number;
  /** Host name resolution for webhook and Slack; the system resolver by default. */
  resolve?: Resolver;
  /**
   * The Amazon SNS notifier (`createSnsNotifier` from ./sns/sns-notifier.js), when configured.
   * Passed in rather than built here so a server without SNS never loads the AWS SDK.
   */
  sns?: Notifier;
}

/**
 * The notifiers by channel type. 'sns' has none unless an SNS notifier is passed in (the AWS
 * deployment's functions do); 'email' has none unless SMTP is configured. A dispatcher that
 * finds no notifier for a delivery's channel should dead-letter it with a clear reason.
 */
export function createNotifiers(
  options: NotifierRegistryOptions,
): Map<ChannelConfig['type'], Notifier> {
  const http = {
    policy: options.policy,
    ...(options.httpTimeoutMs === undefined ? {} : { timeoutMs: options.httpTimeoutMs }),
    ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
  };
  const notifiers: Notifier[] = [
    createWebhookNotifier(http),
    createSlackNotifier(http),
    createLogNotifier({ logger: options.logger }),
  ];
  if (options.email)
    notifiers.push(createEmailNotifier({ smtp: options.email, logger: options.logger }));
  if (options.sns) notifiers.push(options.sns);
  return new Map(notifiers.map((n) => [n.type, n]));
}
