import { Agent } from 'node:http';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../testing/http-client.js';
import {
  killStartedServers,
  makeDataDir,
  removeDataDir,
  type ServerProcess,
  startServerProcess,
} from '../testing/server-process.js';
import {
  addTotals,
  HOUR_MS,
  newEventId,
  seededRandom,
  sumByUser,
  sumEvents,
  TokenwatchApi,
  type Totals,
  type WireEvent,
  ZERO_TOTALS,
} from '../testing/tokenwatch-api.js';

/**
 * Issue 2, "Crash": `tokenwatch serve` is SIGKILLed during a load of many concurrent requests,
 * restarted on the same data dir, and every event that got a 202 is counted exactly once.
 *
 * The ledger oracle (reference/reliability.md § 5): each batch is unsent, in flight (sent, no
 * answer: unknown), acked (202) or refused (any other status). Every batch has its own users, so
 * GET /v1/usage?groupBy=user gives each batch's stored total, and:
 * - an acked batch is stored exactly once, a refused or unsent one not at all;
 * - an in-flight batch is stored completely or not at all (a request is one transaction);
 * - summed: acked <= stored <= acked + in flight.
 * Then EVERY batch is sent again: the answers must agree with what was stored (duplicates for
 * stored batches, accepted for the rest) and the totals must equal the recount of all events
 * exactly, which proves nothing was counted twice.
 */

const SENDERS = 16;
const BATCHES = 240;
const CRASHES = 2;
/** SIGKILL after this many more 202s in each crash cycle (with requests still in flight). */
const ACKS_BEFORE_KILL = 35;
const USERS_PER_BATCH = 3;
const KILL_DELAY_MS = 3;

type State = 'unsent' | 'in-flight' | 'acked' | 'refused' | 'stored-unacked';

interface Batch {
  index: number;
  events: WireEvent[];
  body: Buffer;
  totals: Totals;
  state: State;
  answers: string[];
}

const MODELS: Array<[string, string]> = [
  ['gpt-4o-mini', 'openai'],
  ['anthropic.claude-3-haiku-20240307-v1:0', 'bedrock'],
  ['us.anthropic.claude-sonnet-4-5-20250929-v1:0', 'bedrock'],
  ['eu.amazon.nova-lite-v1:0', 'bedrock'],
  ['claude-sonnet-4-5-20250929', 'anthropic'],
];

function makeBatches(): Batch[] {
  const rnd = seededRandom(20_260_427);
  const now = Date.now();
  const batches: Batch[] = [];
  for (let index = 0; index < BATCHES; index++) {
    const size = 50 + Math.floor(rnd() * 151); // 50..200
    // Time-ordered: event times rise through the batches, ids are UUIDv7 of the event time.
    const base = now - 3 * HOUR_MS + Math.floor((index / BATCHES) * 3 * HOUR_MS);
    const events: WireEvent[] = [];
    for (let j = 0; j < size; j++) {
      const ts = Math.min(base + j * 37, now);
      const [modelId, provider] = MODELS[Math.floor(rnd() * MODELS.length)] as [string, string];
      events.push({
        id: newEventId(ts),
        timestamp: new Date(ts).toISOString(),
        userId: `b${index}-u${j % USERS_PER_BATCH}`,
        appId: `app-${index % 5}`,
        modelId,
        provider,
        inputTokens: 1 + Math.floor(rnd() * 4000),
        outputTokens: Math.floor(rnd() * 1500),
        cacheReadTokens: rnd() < 0.3 ? Math.floor(rnd() * 20_000) : 0,
        cacheWriteTokens: rnd() < 0.1 ? Math.floor(rnd() * 3000) : 0,
        latencyMs: Math.floor(rnd() * 3000),
        tags: { team: `t${index % 4}` },
      });
    }
    batches.push({
      index,
      events,
      body: Buffer.from(JSON.stringify({ events })),
      totals: sumEvents(events),
      state: 'unsent',
      answers: [],
    });
  }
  return batches;
}

/** Stored totals per batch, from `groupBy=user` (users are `b<index>-u<k>`). */
async function storedPerBatch(api: TokenwatchApi, adminKey: string): Promise<Map<number, Totals>> {
  const byUser = await api.totalsByUser(adminKey);
  const out = new Map<number, Totals>();
  for (const [user, totals] of byUser) {
    const m = /^b(\d+)-u\d+$/.exec(user);
    if (!m) throw new Error(`unexpected user ${user}`);
    const index = Number(m[1]);
    out.set(index, addTotals(out.get(index) ?? { ...ZERO_TOTALS }, totals));
  }
  return out;
}

function checkDatabaseIntegrity(dataDir: string): void {
  const db = new Database(join(dataDir, 'tokenwatch.db'));
  try {
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  } finally {
    db.close();
  }
}

let dataDir: string | undefined;

afterAll(async () => {
  await killStartedServers();
  if (dataDir) removeDataDir(dataDir);
});

describe('SIGKILL during concurrent ingest', () => {
  it('counts every acknowledged event exactly once after a restart', async () => {
    dataDir = makeDataDir('crash');
    const batches = makeBatches();
    let server: ServerProcess = await startServerProcess({ dataDir });
    const ingestKey = server.ingestKey as string;
    const adminKey = server.adminKey as string;
    const queue = [...batches];

    for (let cycle = 1; cycle <= CRASHES; cycle++) {
      const agent = new Agent({ keepAlive: true, maxSockets: SENDERS });
      const target = server;
      let acksThisCycle = 0;
      let killScheduled = false;
      let killed = false;
      let inFlightAtKill = -1;
      const inFlight = new Set<Batch>();

      const sender = async (): Promise<void> => {
        while (!killed) {
          const batch = queue.shift();
          if (!batch) return;
          batch.state = 'in-flight';
          inFlight.add(batch);
          try {
            const res = await httpRequest(`${target.url}/v1/events`, {
              method: 'POST',
              agent,
              headers: {
                authorization: `Bearer ${ingestKey}`,
                'content-type': 'application/json',
              },
              body: batch.body,
              timeoutMs: 30_000,
            });
            inFlight.delete(batch);
            batch.answers.push(`${res.status} ${res.text}`);
            if (res.status === 202) {
              batch.state = 'acked';
              acksThisCycle++;
              if (acksThisCycle >= ACKS_BEFORE_KILL && !killScheduled) {
                killScheduled = true;
                const kill = () => {
                  killed = true;
                  inFlightAtKill = inFlight.size;
                  process.kill(target.pid, 'SIGKILL');
                };
                // Cycle 1 kills between flushes (right after one was answered); later cycles a
                // few ms on, when the next flush is likely being written.
                if (cycle === 1) kill();
                else setTimeout(kill, KILL_DELAY_MS * (cycle - 1));
              }
            } else {
              batch.state = 'refused';
            }
          } catch (err) {
            // No answer: the batch stays in flight, its outcome unknown.
            batch.answers.push(`error ${(err as Error).message}`);
            return;
          }
        }
      };
      await Promise.all(Array.from({ length: SENDERS }, sender));
      agent.destroy();

      expect(killed, `cycle ${cycle}: the load ended before the kill`).toBe(true);
      expect(inFlightAtKill, 'requests were in flight at the kill').toBeGreaterThan(0);
      expect(await target.exited).toEqual({ code: null, signal: 'SIGKILL' });

      // The file is consistent after the crash, before anything reopens it.
      checkDatabaseIntegrity(dataDir);

      server = await startServerProcess({ dataDir });
      const api = new TokenwatchApi(server.url);
      const stored = await storedPerBatch(api, adminKey);

      let ackedSum = 0;
      let inFlightSum = 0;
      let storedSum = 0;
      for (const b of batches) {
        const got = stored.get(b.index) ?? { ...ZERO_TOTALS };
        storedSum += got.totalTokens;
        const context = `batch ${b.index} (${b.state}): ${b.answers.join(' | ')}`;
        switch (b.state) {
          case 'acked':
          case 'stored-unacked':
            if (b.state === 'acked') ackedSum += b.totals.totalTokens;
            else inFlightSum += b.totals.totalTokens;
            expect(got, context).toEqual(b.totals);
            break;
          case 'in-flight':
            inFlightSum += b.totals.totalTokens;
            if (got.requests === 0) {
              // Lost before commit: it goes back in the queue, as a client would retry it.
              b.state = 'unsent';
              queue.unshift(b);
            } else {
              expect(got, `${context}: a request is all or nothing`).toEqual(b.totals);
              b.state = 'stored-unacked';
            }
            break;
          case 'refused':
          case 'unsent':
            expect(got, context).toEqual(ZERO_TOTALS);
            break;
        }
      }
      expect(ackedSum).toBeGreaterThan(0);
      expect(storedSum).toBeGreaterThanOrEqual(ackedSum);
      expect(storedSum).toBeLessThanOrEqual(ackedSum + inFlightSum);
    }

    // Send every batch again, acked or not.
    const api = new TokenwatchApi(server.url);
    const resend = [...batches];
    const agent = new Agent({ keepAlive: true, maxSockets: 4 });
    const resender = async (): Promise<void> => {
      for (let b = resend.shift(); b; b = resend.shift()) {
        const res = await httpRequest(`${server.url}/v1/events`, {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${ingestKey}`, 'content-type': 'application/json' },
          body: b.body,
        });
        expect(res.status, res.text).toBe(202);
        const n = b.events.length;
        const wasStored = b.state === 'acked' || b.state === 'stored-unacked';
        expect(res.json(), `batch ${b.index} (${b.state})`).toEqual(
          wasStored
            ? { accepted: 0, duplicates: n, conflicts: 0 }
            : { accepted: n, duplicates: 0, conflicts: 0 },
        );
      }
    };
    await Promise.all(Array.from({ length: 4 }, resender));
    agent.destroy();

    const all = batches.flatMap((b) => b.events);
    expect(await api.storedTotals(adminKey)).toEqual(sumEvents(all));
    expect(await api.totalsByUser(adminKey)).toEqual(sumByUser(all));
    const byTeam = await api.usageRows(adminKey, { groupBy: 'tag:team' });
    expect(byTeam.reduce((s, r) => s + r.requests, 0)).toBe(all.length);

    const exit = await server.kill('SIGTERM');
    expect(exit).toEqual({ code: 0, signal: null });
    checkDatabaseIntegrity(dataDir);
  });
});
