import { createHmac, randomBytes } from 'node:crypto';
import { type Delivery, type Notifier, TokenwatchError } from '@tokenwatch/core';
import { assertDelivered, guardedPost } from '../guarded-post.js';
import type { NetworkPolicy, Resolver } from '../ssrf-guard.js';

/**
 * Webhook channel, signed as in Standard Webhooks 1.0: `webhook-id` (the delivery id, the same
 * on every retry, for the receiver's dedupe), `webhook-timestamp` (Unix seconds of this attempt)
 * and `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed with the bytes of
 * the base64 secret after its `whsec_` prefix.
 */

export const WEBHOOK_EVENT_TYPE = 'tokenwatch.alert';
/** Standard Webhooks asks for thin payloads; ours are a few hundred bytes. */
export const WEBHOOK_BODY_MAX_BYTES = 20 * 1024;
const SECRET_PREFIX = 'whsec_';

/** A new endpoint secret: `whsec_` + base64 of 32 random bytes. */
export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

/**
 * The key bytes of a secret (`whsec_<base64>`; the prefix is optional, as in the reference
 * libraries). Throws `invalid_argument` for a secret that is not base64 of 24 to 64 bytes.
 */
export function webhookSecretKey(secret: string): Buffer {
  const b64 = secret.startsWith(SECRET_PREFIX) ? secret.slice(SECRET_PREFIX.length) : secret;
  const valid = /^[A-Za-z0-9+/]+={0,2}$/.test(b64) && b64.length % 4 === 0;
  const key = valid ? Buffer.from(b64, 'base64') : Buffer.alloc(0);
  if (key.length < 24 || key.length > 64)
    throw new TokenwatchError(
      'invalid_argument',
      'webhook secret must be whsec_ followed by the base64 of 24 to 64 random bytes, e.g. whsec_$(openssl rand -base64 32)',
      { retryable: false },
    );
  return key;
}

/** `v1,<base64 HMAC-SHA256(key, "${id}.${timestamp}.${body}")>` */
export function signWebhook(
  secret: string,
  id: string,
  timestampSeconds: number,
  body: string,
): string {
  const mac = createHmac('sha256', webhookSecretKey(secret))
    .update(`${id}.${timestampSeconds}.${body}`)
    .digest('base64');
  return `v1,${mac}`;
}

/**
 * The JSON body: `type`, `deliveryId`, then every field of the AlertMessage. It depends only on
 * the delivery, so every retry sends the same bytes.
 */
export function webhookBody(delivery: Delivery): string {
  return JSON.stringify({
    type: WEBHOOK_EVENT_TYPE,
    deliveryId: delivery.id,
    ...delivery.message,
  });
}

export interface WebhookNotifierOptions {
  policy: NetworkPolicy;
  /** Cap on one attempt whatever the dispatcher's signal says. Default 30 s. */
  timeoutMs?: number;
  /** Clock for `webhook-timestamp`, in ms. */
  now?: () => number;
  resolve?: Resolver;
}

export function createWebhookNotifier(options: WebhookNotifierOptions): Notifier {
  const now = options.now ?? Date.now;
  return {
    type: 'webhook',
    async send(delivery: Delivery, signal: AbortSignal): Promise<void> {
      const channel = delivery.channel;
      if (channel.type !== 'webhook')
        throw new TokenwatchError('internal', `webhook notifier got a ${channel.type} channel`);
      const body = webhookBody(delivery);
      if (Buffer.byteLength(body) > WEBHOOK_BODY_MAX_BYTES)
        throw new TokenwatchError(
          'payload_too_large',
          `webhook body is ${Buffer.byteLength(body)} bytes, over ${WEBHOOK_BODY_MAX_BYTES}`,
          { retryable: false },
        );
      const timestamp = Math.floor(now() / 1000);
      const headers: Record<string, string> = {
        'content-type': 'application/json',
        'webhook-id': delivery.id,
        'webhook-timestamp': String(timestamp),
      };
      if (channel.secret !== undefined && channel.secret !== '')
        headers['webhook-signature'] = signWebhook(channel.secret, delivery.id, timestamp, body);
      const res = await guardedPost(channel.url, {
        headers,
        body,
        signal,
        policy: options.policy,
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.resolve === undefined ? {} : { resolve: options.resolve }),
      });
      assertDelivered(res, 'webhook', new URL(channel.url).host);
    },
  };
}
