import { afterAll, describe, expect, it } from 'vitest';
import {
  eventually,
  localHourWindow,
  localTime,
  recentInCurrentHour,
  startAlertServer,
  usageEvent,
} from '../testing/alerts-harness.js';
import { killStartedServers, makeDataDir, removeDataDir } from '../testing/server-process.js';
import { type Mailbox, startMailbox } from '../testing/smtp-mailbox.js';

/**
 * Issue 3, "What must hold": email goes end to end through a real SMTP server started by the
 * test (`smtp-server` on loopback, `alerts.smtp` in the config file); the message it receives is
 * parsed (`mailparser`) and its subject, text and HTML name the user, app, model, window, value
 * and level, like the seed's sample email.
 */

const dataDirs: string[] = [];
let box: Mailbox | undefined;

afterAll(async () => {
  await killStartedServers();
  await box?.close();
  for (const d of dataDirs) removeDataDir(d);
});

const pad = (n: number) => String(n).padStart(2, '0');

describe('email alerts through a real SMTP server', () => {
  it('subject, text and HTML carry user, app, model, window, value and level', async () => {
    box = await startMailbox();
    const dataDir = makeDataDir('email');
    dataDirs.push(dataDir);
    const srv = await startAlertServer({
      dataDir,
      config: {
        alerts: {
          smtp: {
            host: '127.0.0.1',
            port: box.port,
            secure: false,
            from: 'tokenwatch <alerts@tokenwatch.example>',
          },
        },
      },
    });
    const zone = 'Europe/Berlin';
    const rule = await srv.client.createRule({
      name: 'mail per user x app x model',
      scope: ['user', 'app', 'model'],
      metric: 'totalTokens',
      window: { type: 'calendar', unit: 'hour', timeZone: zone },
      levels: [{ value: 12_000 }],
      channels: [{ type: 'email', to: ['ops@example.com', 'finance@example.com'] }],
    });
    const ts = recentInCurrentHour(30_000);
    await srv.client.ingest([
      usageEvent({
        userId: 'mail-alice',
        appId: 'support-bot',
        modelId: 'gpt-4o-mini',
        provider: 'openai',
        timestampMs: ts,
        inputTokens: 12_000,
        outputTokens: 345,
      }),
    ]);
    const [alert] = await srv.client.alerts({ ruleId: rule.id });
    expect(alert).toBeDefined();

    await box.waitFor(1, 20_000);
    // One message, to both recipients, from the configured sender.
    await new Promise((r) => setTimeout(r, 1_500));
    expect(box.messages).toHaveLength(1);
    const { mail, from, to } = box.messages[0] as Mailbox['messages'][number];
    expect(from).toBe('alerts@tokenwatch.example');
    expect(to.sort()).toEqual(['finance@example.com', 'ops@example.com']);

    // The window as local time in its zone, computed here independently.
    const win = localHourWindow(ts, zone);
    const start = localTime(win.startMs, zone);
    const end = localTime(win.endMs, zone);
    const endText = end.hour === 0 && end.minute === 0 ? '24:00' : `${pad(end.hour)}:00`;
    const windowText = `${start.date} ${pad(start.hour)}:00–${endText} ${zone}`;
    expect(alert?.window.start).toBe(new Date(win.startMs).toISOString());

    const subject = mail.subject ?? '';
    const text = mail.text ?? '';
    const html = typeof mail.html === 'string' ? mail.html : '';
    expect(html).not.toBe('');
    for (const needle of ['mail-alice', 'support-bot', 'gpt-4o-mini', '12,345', '12,000']) {
      expect(subject, `subject has ${needle}`).toContain(needle);
    }
    for (const [name, body] of [
      ['text', text],
      ['html', html],
    ] as const) {
      for (const needle of [
        'mail-alice',
        'support-bot',
        'gpt-4o-mini',
        '12,345',
        '12,000',
        windowText,
        alert?.id ?? 'the alert id',
      ]) {
        expect(body, `${name} has ${needle}`).toContain(needle);
      }
    }
    // The delivery is recorded as delivered, once.
    const ds = await eventually(
      async () => {
        const list = await srv.client.deliveries({ alertId: alert?.id ?? '' });
        return list.length === 1 && list[0]?.status === 'delivered' ? list : undefined;
      },
      { timeoutMs: 10_000, what: 'email delivery delivered' },
    );
    expect(ds[0]?.channel).toBe('email');
    expect(text).toContain(ds[0]?.id ?? 'the delivery id');
    await srv.server.kill('SIGTERM');
  });
});
