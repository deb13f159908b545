import { type AlertMessage, type Delivery, type Notifier, TokenwatchError } from '@tokenwatch/core';
import { assertDelivered, guardedPost } from '../guarded-post.js';
import { renderAlert } from '../render-alert.js';
import type { NetworkPolicy, Resolver } from '../ssrf-guard.js';

/** Slack's own escaping for text it parses: only &, < and > (so no <!channel> or links from user ids). */
export function escapeSlack(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  const chars = Array.from(text);
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

type SlackText = { type: 'plain_text' | 'mrkdwn'; text: string; emoji?: boolean };
export type SlackBlock =
  | { type: 'header'; text: SlackText }
  | { type: 'section'; text?: SlackText; fields?: SlackText[] }
  | { type: 'context'; elements: SlackText[] }
  | {
      type: 'actions';
      elements: Array<{ type: 'button'; text: SlackText; url: string; action_id: string }>;
    };

export interface SlackPayload {
  /** Fallback for notifications and clients that do not show blocks. */
  text: string;
  blocks: SlackBlock[];
}

/**
 * A Slack incoming-webhook message: a header with the rule and the numbers in short form,
 * the headline, the scope, window, value and level as fields, the late / forecast marks and
 * a button to the dashboard.
 */
export function slackPayload(message: AlertMessage): SlackPayload {
  const r = renderAlert(message);
  const icon = message.forecast ? ':crystal_ball:' : ':rotating_light:';
  const marks = r.marks.length ? ` [${r.marks.join(', ')}]` : '';
  const headerText = `${r.compact.value} of ${r.compact.level}${r.compact.percentOfLevel ? ` (${r.compact.percentOfLevel})` : ''} · ${r.facts[0]?.value ?? ''}${marks}`;
  const blocks: SlackBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(headerText, 150), emoji: true } },
    {
      type: 'section',
      text: { type: 'mrkdwn', text: clip(`${icon} *${escapeSlack(r.headline)}*`, 3000) },
    },
    {
      type: 'section',
      // Slack allows 10 fields of 2,000 characters.
      fields: r.facts.slice(0, 10).map((f) => ({
        type: 'mrkdwn' as const,
        text: clip(`*${f.label}*\n${escapeSlack(f.value)}`, 2000),
      })),
    },
  ];
  if (r.notes.length)
    blocks.push({
      type: 'context',
      elements: r.notes.map((n) => ({ type: 'mrkdwn' as const, text: escapeSlack(n) })),
    });
  if (r.url && r.url.length <= 3000)
    blocks.push({
      type: 'actions',
      elements: [
        {
          type: 'button',
          text: { type: 'plain_text', text: 'Open in tokenwatch' },
          url: r.url,
          action_id: 'tokenwatch_open',
        },
      ],
    });
  const link = r.url ? ` <${r.url}|Open in tokenwatch>` : '';
  return { text: clip(`${escapeSlack(r.subject)}${link}`, 3000), blocks };
}

export interface SlackNotifierOptions {
  policy: NetworkPolicy;
  timeoutMs?: number;
  resolve?: Resolver;
}

/** Slack incoming webhook, through the same SSRF guard as webhooks. Slack answers 200 `ok`. */
export function createSlackNotifier(options: SlackNotifierOptions): Notifier {
  return {
    type: 'slack',
    async send(delivery: Delivery, signal: AbortSignal): Promise<void> {
      const channel = delivery.channel;
      if (channel.type !== 'slack')
        throw new TokenwatchError('internal', `slack notifier got a ${channel.type} channel`);
      const res = await guardedPost(channel.url, {
        headers: { 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(slackPayload(delivery.message)),
        signal,
        policy: options.policy,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
      });
      assertDelivered(res, 'slack', new URL(channel.url).host);
    },
  };
}
