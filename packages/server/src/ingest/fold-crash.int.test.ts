import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type AlertServer,
  startAlertServer,
  usageEvent,
  writeConfigFile,
} from '../testing/alerts-harness.js';
import { killStartedServers, removeDataDir } from '../testing/server-process.js';

/**
 * Issue 12, the fold step: a 202 needs only the id claims and an append to the event log; the
 * rollups and rule counters are folded in later. A SIGKILL between the append and the fold, or
 * during the fold, must leave totals, alerts and POST /v1/check exact after the restart: the
 * log holds exactly the unfolded events and is replayed at start-up.
 */

const USERS = ['ann', 'ben', 'cid'];
/** Per event; the levels below are crossed part-way through the load. */
const TOKENS = 100;
const EVENTS_PER_USER = 30;

/**
 * Straight from the file: per user, the rule counter's folded value plus the tokens still in the
 * log. A fold chunk that wrote counters for other rows than it deleted makes this differ from
 * what was accepted.
 */
function countersPlusLog(dataDir: string): Map<string, number> {
  const db = new Database(join(dataDir, 'tokenwatch.db'), { readonly: true });
  try {
    const out = new Map<string, number>();
    for (const r of db.prepare('SELECT scope_key, value FROM rule_counters').all() as Array<{
      scope_key: string;
      value: number;
    }>) {
      const [user] = JSON.parse(r.scope_key) as [string];
      out.set(user, (out.get(user) ?? 0) + r.value);
    }
    for (const row of db.prepare('SELECT events FROM event_log').pluck().all() as string[]) {
      // A log row: one array per event, user at index 3, input tokens at 7 (event-log.ts).
      for (const e of JSON.parse(row) as unknown[][])
        out.set(e[3] as string, (out.get(e[3] as string) ?? 0) + (e[7] as number));
    }
    return out;
  } finally {
    db.close();
  }
}

function unfoldedRows(dataDir: string): number {
  const db = new Database(join(dataDir, 'tokenwatch.db'), { readonly: true });
  try {
    return (db.prepare('SELECT COUNT(*) FROM event_log').pluck().get() as number) ?? 0;
  } finally {
    db.close();
  }
}

const rule = {
  name: 'per user, hourly, enforced',
  scope: ['user'],
  metric: 'totalTokens',
  window: { type: 'calendar', unit: 'hour', timeZone: 'UTC' },
  levels: [{ value: 1_000 }, { value: 2_000 }],
  channels: [{ type: 'log' }],
  enforce: true,
};

async function load(srv: AlertServer): Promise<void> {
  // Inside the current hour, so the rule's window holds all of it whatever the clock does.
  const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000;
  const ts = Math.max(hourStart, Date.now() - 60_000);
  for (let i = 0; i < EVENTS_PER_USER; i++) {
    const batch = USERS.map((userId) =>
      usageEvent({ userId, inputTokens: TOKENS, timestampMs: ts + i }),
    );
    expect((await srv.client.ingest(batch)).accepted).toBe(USERS.length);
  }
}

/** After the restart: totals, alerts and checks as if nothing had happened. */
async function expectExact(srv: AlertServer, ruleId: string): Promise<void> {
  const rows = (await srv.client.send('GET', '/v1/usage?groupBy=user')).json().rows as Array<{
    user: string;
    inputTokens: number;
    requests: number;
  }>;
  expect(rows.map((r) => [r.user, r.inputTokens, r.requests]).sort()).toEqual(
    USERS.map((u) => [u, TOKENS * EVENTS_PER_USER, EVENTS_PER_USER]).sort(),
  );
  const alerts = await srv.client.alerts({ ruleId });
  expect(alerts.map((a) => `${a.scope.user}:${a.level.threshold}`).sort()).toEqual(
    USERS.flatMap((u) => [`${u}:1000`, `${u}:2000`]).sort(),
  );
  for (const userId of USERS) {
    const check = (
      await srv.client.check({ userId, appId: 'chat', modelId: 'gpt-4o-mini', estimatedTokens: 0 })
    ).json() as { allowed: boolean; rules: Array<{ used: number }> };
    expect(check.rules[0]?.used).toBe(TOKENS * EVENTS_PER_USER);
    expect(check.allowed).toBe(false);
  }
}

describe('SIGKILL around the fold', () => {
  afterAll(killStartedServers);

  it('between the append and the fold: the restart replays the log', async () => {
    // No fold by timer: every 202'd event is only in the log when the process dies.
    const config = { store: { driver: 'sqlite', foldIntervalMs: 60_000 } };
    const first = await startAlertServer({ label: 'fold-before', config });
    try {
      const created = await first.client.createRule(rule);
      await load(first);
      await first.server.kill('SIGKILL');
      expect(unfoldedRows(first.dataDir)).toBe(EVENTS_PER_USER);
      writeConfigFile(first.dataDir, config);
      const again = await startAlertServer({
        dataDir: first.dataDir,
        keys: { adminKey: first.client.adminKey, ingestKey: first.client.ingestKey },
      });
      try {
        expect(unfoldedRows(first.dataDir)).toBe(0);
        await expectExact(again, created.id);
      } finally {
        await again.server.kill('SIGTERM');
      }
    } finally {
      removeDataDir(first.dataDir);
    }
  });

  it('during a fold: the restart folds the same events once', async () => {
    const config = { store: { driver: 'sqlite', foldIntervalMs: 60_000 } };
    for (const delayMs of [0, 2, 5, 10]) {
      const first = await startAlertServer({ label: `fold-during-${delayMs}`, config });
      try {
        const created = await first.client.createRule(rule);
        await load(first);
        // A read folds first: kill the process while that fold runs (or just before it commits).
        const read = first.client.send('GET', '/v1/usage?groupBy=user').catch(() => undefined);
        await new Promise((r) => setTimeout(r, delayMs));
        await first.server.kill('SIGKILL');
        await read;
        writeConfigFile(first.dataDir, config);
        const again = await startAlertServer({
          dataDir: first.dataDir,
          keys: { adminKey: first.client.adminKey, ingestKey: first.client.ingestKey },
        });
        try {
          expect(unfoldedRows(first.dataDir)).toBe(0);
          await expectExact(again, created.id);
        } finally {
          await again.server.kill('SIGTERM');
        }
      } finally {
        removeDataDir(first.dataDir);
      }
    }
  });

  it('between two chunks of a fold: the restart folds exactly the rest', async () => {
    // One batch (3 events) per fold transaction; the timed fold begins after the load.
    const config = {
      store: { driver: 'sqlite', foldIntervalMs: 1_500, foldChunkEvents: 1 },
    };
    let landed = 0;
    for (let attempt = 0; attempt < 5 && landed === 0; attempt++) {
      const first = await startAlertServer({ label: `fold-chunks-${attempt}`, config });
      try {
        const created = await first.client.createRule(rule);
        await load(first);
        // Wait for the fold to be part-way through the log, then kill the process.
        const deadline = Date.now() + 10_000;
        let rows = unfoldedRows(first.dataDir);
        while (rows === EVENTS_PER_USER && Date.now() < deadline)
          rows = unfoldedRows(first.dataDir);
        await first.server.kill('SIGKILL');
        const left = unfoldedRows(first.dataDir);
        if (left > 0 && left < EVENTS_PER_USER) landed++;
        expect(countersPlusLog(first.dataDir)).toEqual(
          new Map(USERS.map((u) => [u, TOKENS * EVENTS_PER_USER])),
        );
        writeConfigFile(first.dataDir, config);
        const again = await startAlertServer({
          dataDir: first.dataDir,
          keys: { adminKey: first.client.adminKey, ingestKey: first.client.ingestKey },
        });
        try {
          expect(unfoldedRows(first.dataDir)).toBe(0);
          await expectExact(again, created.id);
        } finally {
          await again.server.kill('SIGTERM');
        }
      } finally {
        removeDataDir(first.dataDir);
      }
    }
    // At least one kill landed with some of the fold's chunks committed and some not.
    expect(landed).toBeGreaterThan(0);
  });
});
