import { type AlertMessage, type Delivery, type Notifier, TokenwatchError } from '@tokenwatch/core';
import type { Transporter } from 'nodemailer';
import type SMTPTransport from 'nodemailer/lib/smtp-transport/index.js';
import type { Logger } from '../../../logging/logger.js';
import { escapeHtml, type RenderedAlert, renderAlert } from '../render-alert.js';

/** SMTP server the email channel sends through (config `alerts.email`). */
export interface SmtpConfig {
  host: string;
  port: number;
  /** true: TLS from the first byte (port 465). false: plain, upgraded with STARTTLS when offered. */
  secure: boolean;
  user?: string;
  pass?: string;
  /** Sender, e.g. `tokenwatch <alerts@example.com>`. */
  from: string;
}

export interface EmailContent {
  subject: string;
  text: string;
  html: string;
}

function textBody(r: RenderedAlert, message: AlertMessage, deliveryId: string): string {
  const width = Math.max(...r.facts.map((f) => f.label.length)) + 2;
  const lines = [r.headline, ''];
  for (const f of r.facts) lines.push(`${`${f.label}:`.padEnd(width)}${f.value}`);
  if (r.notes.length) lines.push('', ...r.notes);
  if (r.url) lines.push('', `Open in tokenwatch: ${r.url}`);
  lines.push('', '-- ', `tokenwatch alert ${message.alertId}, delivery ${deliveryId}`);
  return `${lines.join('\n')}\n`;
}

function htmlBody(r: RenderedAlert, message: AlertMessage, deliveryId: string): string {
  const rows = r.facts
    .map(
      (f) =>
        `<tr><th align="left" style="padding:4px 12px 4px 0;color:#555;font-weight:600">${escapeHtml(f.label)}</th><td style="padding:4px 0">${escapeHtml(f.value)}</td></tr>`,
    )
    .join('\n');
  const notes = r.notes
    .map((n) => `<p style="color:#8a6d3b;margin:8px 0">${escapeHtml(n)}</p>`)
    .join('\n');
  const link = r.url
    ? `<p><a href="${escapeHtml(r.url)}" style="color:#0b62d6">Open in tokenwatch</a></p>`
    : '';
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escapeHtml(r.subject)}</title></head>
<body style="font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;font-size:14px;color:#222">
<h2 style="font-size:16px;margin:0 0 12px">${escapeHtml(r.headline)}</h2>
<table cellspacing="0" cellpadding="0">
${rows}
</table>
${notes}
${link}
<p style="color:#888;font-size:12px;margin-top:16px">tokenwatch alert ${escapeHtml(message.alertId)}, delivery ${escapeHtml(deliveryId)}</p>
</body></html>
`;
}

/** Subject, text and HTML of the alert email (every value from events HTML-escaped). */
export function emailContent(message: AlertMessage, deliveryId: string): EmailContent {
  const r = renderAlert(message);
  return {
    subject: r.subject,
    text: textBody(r, message, deliveryId),
    html: htmlBody(r, message, deliveryId),
  };
}

function domainOf(from: string): string {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from);
  return match?.[1] ?? 'tokenwatch.invalid';
}

interface SmtpError {
  code?: string;
  responseCode?: number;
  message?: string;
}

function smtpFailure(err: unknown, host: string): TokenwatchError {
  const e = (err ?? {}) as SmtpError;
  const code = e.code;
  const responseCode = e.responseCode;
  const message = `email via ${host} failed: ${e.message ?? String(err)}`;
  const context = { channel: 'email', smtpCode: code, responseCode };
  if (code === 'EABORT')
    return new TokenwatchError('unavailable', `email via ${host} was aborted (timeout)`, {
      retryable: true,
      cause: err,
      context: { ...context, timeout: true },
    });
  if (code === 'ECONFIG')
    return new TokenwatchError('invalid_config', message, {
      retryable: false,
      cause: err,
      context,
    });
  // A permanent SMTP reply (5yz, except 503 bad sequence) refuses this message for good, e.g.
  // an unknown recipient. A failed login is the operator's to fix: retry until the max age.
  const permanent =
    code !== 'EAUTH' &&
    responseCode !== undefined &&
    responseCode >= 500 &&
    responseCode < 600 &&
    responseCode !== 503;
  return new TokenwatchError('unavailable', message, {
    retryable: !permanent,
    cause: err,
    context,
  });
}

export interface EmailNotifierOptions {
  smtp: SmtpConfig;
  logger?: Logger;
}

/**
 * Email channel over SMTP (nodemailer). One connection per message, closed when the message is
 * sent or when `signal` aborts it. The Message-ID derives from the delivery id, so a retry that
 * the server had in fact accepted shows up as the same message. nodemailer is imported at the
 * first send (≈ 0.1 s of CPU), so a server that sends no email never loads it.
 */
export function createEmailNotifier(options: EmailNotifierOptions): Notifier {
  const { smtp, logger } = options;
  let transport: Promise<Transporter<SMTPTransport.SentMessageInfo>> | undefined;
  const smtpTransport = () =>
    (transport ??= import('nodemailer').then(({ createTransport }) =>
      createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure,
        ...(smtp.user !== undefined ? { auth: { user: smtp.user, pass: smtp.pass ?? '' } } : {}),
        connectionTimeout: 10_000,
        greetingTimeout: 10_000,
        socketTimeout: 30_000,
        dnsTimeout: 10_000,
        // Never read files or URLs named in message fields.
        disableFileAccess: true,
        disableUrlAccess: true,
      }),
    ));
  return {
    type: 'email',
    async send(delivery: Delivery, signal: AbortSignal): Promise<void> {
      const channel = delivery.channel;
      if (channel.type !== 'email')
        throw new TokenwatchError('internal', `email notifier got a ${channel.type} channel`);
      if (channel.to.length === 0)
        throw new TokenwatchError('invalid_config', 'email channel has no recipients', {
          retryable: false,
        });
      const content = emailContent(delivery.message, delivery.id);
      let info: { accepted: unknown[]; rejected: unknown[] };
      try {
        info = await (await smtpTransport()).sendMail({
          from: smtp.from,
          to: channel.to,
          subject: content.subject,
          text: content.text,
          html: content.html,
          messageId: `<${delivery.id}@${domainOf(smtp.from)}>`,
          headers: {
            'X-Tokenwatch-Alert-Id': delivery.message.alertId,
            'X-Tokenwatch-Delivery-Id': delivery.id,
            'Auto-Submitted': 'auto-generated',
          },
          signal,
        });
      } catch (err) {
        throw smtpFailure(err, smtp.host);
      }
      if (info.rejected.length > 0)
        logger?.warn('email alert: some recipients were refused', {
          deliveryId: delivery.id,
          rejected: info.rejected.map(String),
          accepted: info.accepted.length,
        });
    },
  };
}
