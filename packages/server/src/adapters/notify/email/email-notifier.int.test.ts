import type { AddressInfo } from 'node:net';
import { createServer as createTcpServer, type Socket } from 'node:net';
import { TokenwatchError } from '@tokenwatch/core';
import { type ParsedMail, simpleParser } from 'mailparser';
import { SMTPServer, type SMTPServerOptions } from 'smtp-server';
import { afterEach, describe, expect, it } from 'vitest';
import { sampleDelivery, sampleMessage } from '../testing/receiver.js';
import { createEmailNotifier, type SmtpConfig } from './email-notifier.js';

/**
 * Issue 3, "What must hold": email goes through a real SMTP server started by the test
 * (`smtp-server`), and the message it receives is parsed (`mailparser`) and checked.
 */

interface Mailbox {
  port: number;
  messages: ParsedMail[];
  envelopes: Array<{ from: string; to: string[] }>;
  close(): Promise<void>;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  while (closers.length) await closers.pop()?.();
});

async function startSmtp(options: SMTPServerOptions = {}): Promise<Mailbox> {
  const messages: ParsedMail[] = [];
  const envelopes: Mailbox['envelopes'] = [];
  const server = new SMTPServer({
    logger: false,
    hideSTARTTLS: true,
    authOptional: true,
    ...options,
    onData(stream, session, callback) {
      simpleParser(stream).then(
        (mail) => {
          messages.push(mail);
          envelopes.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
          });
          callback();
        },
        (err: Error) => callback(err),
      );
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const port = (server.server.address() as AddressInfo).port;
  const close = () => new Promise<void>((resolve) => server.close(() => resolve()));
  closers.push(close);
  return { port, messages, envelopes, close };
}

const smtpAt = (port: number, extra: Partial<SmtpConfig> = {}): SmtpConfig => ({
  host: '127.0.0.1',
  port,
  secure: false,
  from: 'tokenwatch <alerts@tokenwatch.example>',
  ...extra,
});

async function failure(p: Promise<unknown>): Promise<TokenwatchError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(TokenwatchError);
    return err as TokenwatchError;
  }
  throw new Error('expected the send to fail');
}

describe('email notifier through a real SMTP server', () => {
  it("delivers the seed's alert: subject, text and HTML with user, app, model, window, value, level", async () => {
    const box = await startSmtp();
    const message = sampleMessage({
      scope: { user: 'alice', app: 'chat', model: 'anthropic.claude-3-haiku-20240307-v1:0' },
    });
    const delivery = sampleDelivery(
      { type: 'email', to: ['ops@example.com', 'finops@example.com'] },
      message,
    );
    await createEmailNotifier({ smtp: smtpAt(box.port) }).send(
      delivery,
      AbortSignal.timeout(10_000),
    );

    expect(box.messages).toHaveLength(1);
    expect(box.envelopes[0]).toEqual({
      from: 'alerts@tokenwatch.example',
      to: ['ops@example.com', 'finops@example.com'],
    });
    const mail = box.messages[0]!;
    expect(mail.subject).toBe(
      '[tokenwatch] alice (app chat) exceeded 10,000 tokens/hour on anthropic.claude-3-haiku… (12,345)',
    );
    expect(mail.from?.value).toEqual([
      { name: 'tokenwatch', address: 'alerts@tokenwatch.example' },
    ]);
    expect(mail.messageId).toBe(`<${delivery.id}@tokenwatch.example>`);
    expect(mail.headers.get('x-tokenwatch-delivery-id')).toBe(delivery.id);
    expect(mail.headers.get('x-tokenwatch-alert-id')).toBe(message.alertId);

    const text = mail.text ?? '';
    for (const line of [
      'alice (app chat) exceeded 10,000 tokens/hour on anthropic.claude-3-haiku-20240307-v1:0 (12,345)',
      'Rule:     seed',
      'User:     alice',
      'App:      chat',
      'Model:    anthropic.claude-3-haiku-20240307-v1:0',
      'Window:   2024-10-08 14:00–15:00 UTC',
      'Value:    12,345 tokens',
      'Level:    10,000 tokens per hour',
      'Open in tokenwatch: http://localhost:8080/ui/usage?user=alice',
    ])
      expect(text).toContain(line);

    const html = typeof mail.html === 'string' ? mail.html : '';
    for (const cell of [
      '<th align="left" style="padding:4px 12px 4px 0;color:#555;font-weight:600">User</th><td style="padding:4px 0">alice</td>',
      '>App</th><td style="padding:4px 0">chat</td>',
      '>Model</th><td style="padding:4px 0">anthropic.claude-3-haiku-20240307-v1:0</td>',
      '>Window</th><td style="padding:4px 0">2024-10-08 14:00–15:00 UTC</td>',
      '>Value</th><td style="padding:4px 0">12,345 tokens</td>',
      '>Level</th><td style="padding:4px 0">10,000 tokens per hour</td>',
      '<a href="http://localhost:8080/ui/usage?user=alice"',
    ])
      expect(html).toContain(cell);
  });

  it('HTML-escapes values from events and keeps them out of the headers', async () => {
    const box = await startSmtp();
    const message = sampleMessage({
      scope: { user: '<img src=x onerror=alert(1)>\r\nBcc: victim@example.com', model: 'm&m' },
    });
    await createEmailNotifier({ smtp: smtpAt(box.port) }).send(
      sampleDelivery({ type: 'email', to: ['ops@example.com'] }, message),
      AbortSignal.timeout(10_000),
    );
    const mail = box.messages[0]!;
    const html = typeof mail.html === 'string' ? mail.html : '';
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain('m&amp;m');
    expect(mail.bcc).toBeUndefined();
    expect(box.envelopes[0]!.to).toEqual(['ops@example.com']);
  });

  it('logs in with user and password when configured; a failed login is retryable', async () => {
    const box = await startSmtp({
      authOptional: false,
      allowInsecureAuth: true,
      onAuth(auth, _session, callback) {
        if (auth.username === 'tw' && auth.password === 's3cret') callback(null, { user: 'tw' });
        else callback(new Error('Invalid username or password'));
      },
    });
    await createEmailNotifier({ smtp: smtpAt(box.port, { user: 'tw', pass: 's3cret' }) }).send(
      sampleDelivery({ type: 'email', to: ['ops@example.com'] }),
      AbortSignal.timeout(10_000),
    );
    expect(box.messages).toHaveLength(1);
    const err = await failure(
      createEmailNotifier({ smtp: smtpAt(box.port, { user: 'tw', pass: 'wrong' }) }).send(
        sampleDelivery({ type: 'email', to: ['ops@example.com'] }),
        AbortSignal.timeout(10_000),
      ),
    );
    expect(err.retryable).toBe(true);
    expect(err.context.smtpCode).toBe('EAUTH');
    expect(box.messages).toHaveLength(1);
  });

  it('a permanent refusal (550) is final, a transient one (450) is retried', async () => {
    let code = 550;
    const box = await startSmtp({
      onRcptTo(_address, _session, callback) {
        callback(Object.assign(new Error('mailbox unavailable'), { responseCode: code }));
      },
    });
    const notifier = createEmailNotifier({ smtp: smtpAt(box.port) });
    const send = () =>
      notifier.send(
        sampleDelivery({ type: 'email', to: ['nobody@example.com'] }),
        AbortSignal.timeout(10_000),
      );
    let err = await failure(send());
    expect([err.retryable, err.context.responseCode]).toEqual([false, 550]);
    code = 450;
    err = await failure(send());
    expect([err.retryable, err.context.responseCode]).toEqual([true, 450]);
    expect(box.messages).toHaveLength(0);
  });

  it('a server that accepts the connection and never answers fails retryably when the signal fires', async () => {
    const sockets = new Set<Socket>();
    let closedByClient = 0;
    const silent = createTcpServer((socket) => {
      sockets.add(socket);
      socket.on('close', () => {
        closedByClient += 1;
      });
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', () => resolve()));
    closers.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          silent.close(() => resolve());
        }),
    );
    const port = (silent.address() as AddressInfo).port;
    const started = Date.now();
    const err = await failure(
      createEmailNotifier({ smtp: smtpAt(port) }).send(
        sampleDelivery({ type: 'email', to: ['ops@example.com'] }),
        AbortSignal.timeout(300),
      ),
    );
    expect(err.retryable).toBe(true);
    expect(err.context.timeout).toBe(true);
    // Below the 10 s greeting timeout, the wait this would be if the signal were ignored.
    expect(Date.now() - started).toBeLessThan(8_000);
    // The connection is closed, not left to the SMTP timeouts.
    await expect.poll(() => closedByClient, { timeout: 6_000 }).toBe(1);
  });

  it('an SMTP server that is down is a retryable failure', async () => {
    const box = await startSmtp();
    await box.close();
    const err = await failure(
      createEmailNotifier({ smtp: smtpAt(box.port) }).send(
        sampleDelivery({ type: 'email', to: ['ops@example.com'] }),
        AbortSignal.timeout(10_000),
      ),
    );
    expect(err.retryable).toBe(true);
  });
});
