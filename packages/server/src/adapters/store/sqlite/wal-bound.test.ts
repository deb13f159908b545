import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { WalBound, walFileSize } from './wal-bound.js';

/**
 * The writer's bound at the limit when another connection's checkpoint is running. SQLite runs
 * one checkpoint at a time and fails a second at once; the writer used to count that as a
 * failure and go on writing, and under sustained ingest its attempts kept landing on the
 * checkpointer thread's copy, so the log grew to twice its limit. Here a second process runs a
 * TRUNCATE checkpoint that a third process's open read transaction keeps waiting: the writer's
 * check must wait for it instead of giving up.
 */

const betterSqlite = createRequire(import.meta.url).resolve('better-sqlite3');
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterEach(() => {
  for (const c of children.splice(0)) c.kill();
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Runs `body` in a Node child with `db` open on `path`; resolves at its first output line. */
function child(path: string, body: string): Promise<ChildProcess> {
  const script = `const db = new (require(${JSON.stringify(betterSqlite)}))(${JSON.stringify(path)});\n${body}`;
  const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(proc);
  return new Promise((resolve, reject) => {
    proc.stdout?.once('data', () => resolve(proc));
    proc.once('exit', (code) => reject(new Error(`child exited (${code}) before it was ready`)));
  });
}

function writeRows(db: Database.Database, count: number): void {
  const insert = db.prepare('INSERT INTO t (payload) VALUES (?)');
  db.transaction(() => {
    for (let i = 0; i < count; i++) insert.run('x'.repeat(500));
  })();
}

/** A writer connection on a new WAL database, with checkpoints left to the test. */
function openWriter(): { path: string; writer: Database.Database } {
  const dir = mkdtempSync(join(tmpdir(), 'tw-wal-bound-'));
  dirs.push(dir);
  const path = join(dir, 'db.sqlite');
  const writer = new Database(path);
  writer.pragma('journal_mode = WAL');
  writer.pragma('wal_autocheckpoint = 0');
  writer.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, payload TEXT)');
  writeRows(writer, 200);
  return { path, writer };
}

/**
 * A reader in another process that holds a snapshot of `path` for `holdMs` (for good without),
 * then leaves a mark; resolves, once it reads, with the mark's path.
 */
async function holdingReader(path: string, holdMs?: number): Promise<string> {
  const released = `${path}-reader-released`;
  const release =
    holdMs === undefined
      ? 'setInterval(() => {}, 1000);'
      : `setTimeout(() => {
           db.prepare('COMMIT').run(); db.close();
           require('node:fs').writeFileSync(${JSON.stringify(released)}, '');
         }, ${holdMs});`;
  await child(
    path,
    `db.prepare('BEGIN').run(); db.prepare('SELECT count(*) FROM t').get();
     console.log('reading'); ${release}`,
  );
  return released;
}

describe('WalBound', () => {
  it('waits at the limit for another connection’s checkpoint instead of counting a failure', async () => {
    const { path, writer } = openWriter();
    const maxWalBytes = 64 * 1024;
    const bound = new WalBound(writer, `${path}-wal`, maxWalBytes, maxWalBytes / 2);
    const failures: string[] = [];
    bound.onFailure = (message) => failures.push(message);

    // A reader holds a snapshot for 2 s, then leaves a mark; frames written after it cannot be
    // checkpointed meanwhile.
    const released = await holdingReader(path, 2000);
    writeRows(writer, 400);
    expect(walFileSize(`${path}-wal`)).toBeGreaterThan(maxWalBytes);
    // Another connection's TRUNCATE checkpoint waits for that reader, holding the checkpoint lock.
    await child(
      path,
      `db.pragma('busy_timeout = 5000'); console.log('checkpointing');
       setTimeout(() => db.pragma('wal_checkpoint(TRUNCATE)'), 0);`,
    );
    await new Promise((r) => setTimeout(r, 150));
    expect(existsSync(released)).toBe(false);

    bound.check();

    expect(failures).toEqual([]);
    expect(bound.failures).toBe(0);
    // It returned only once the other checkpoint ended, which the reader held back.
    expect(existsSync(released)).toBe(true);
    expect(walFileSize(`${path}-wal`)).toBeLessThan(maxWalBytes);
    writer.close();
  });

  it('counts a checkpoint that a reader keeps from finishing, and backs off below the limit', () => {
    const { path, writer } = openWriter();
    const reader = new Database(path);
    reader.prepare('BEGIN').run();
    reader.prepare('SELECT count(*) FROM t').get();
    writeRows(writer, 400);
    const size = walFileSize(`${path}-wal`);
    // The limit above the log, the check threshold below it: a failure backs off.
    const bound = new WalBound(writer, `${path}-wal`, size * 4, size / 2);
    bound.check();
    expect(bound.failures).toBe(1);
    bound.check();
    expect(bound.failures).toBe(1);
    reader.prepare('COMMIT').run();
    reader.close();
    writer.close();
  });

  it('at the limit, waits for a reader to leave the log instead of letting the next write pass it', async () => {
    const { path, writer } = openWriter();
    const released = await holdingReader(path, 400);
    writeRows(writer, 400);
    const maxWalBytes = 64 * 1024;
    expect(walFileSize(`${path}-wal`)).toBeGreaterThan(maxWalBytes);
    const bound = new WalBound(writer, `${path}-wal`, maxWalBytes, maxWalBytes / 2);

    bound.check();

    // One attempt would have failed (the reader holds its snapshot for 400 ms); it waited.
    expect(bound.failures).toBe(0);
    expect(existsSync(released)).toBe(true);
    expect(walFileSize(`${path}-wal`)).toBe(0);
    writer.close();
  });

  it('at the limit, gives up on a long reader after a bounded wait, then tries once per commit until its backoff is due', async () => {
    const { path, writer } = openWriter();
    // A reader that stays (a long export on the same file): killed by afterEach.
    await holdingReader(path);
    writeRows(writer, 400);
    const maxWalBytes = 64 * 1024;
    const bound = new WalBound(writer, `${path}-wal`, maxWalBytes, maxWalBytes / 2);

    const first = Date.now();
    bound.check();
    const firstMs = Date.now() - first;
    const second = Date.now();
    bound.check();
    const secondMs = Date.now() - second;

    expect(bound.failures).toBe(2);
    // The first waited for the reader (1 s); the second made one attempt (a 100 ms busy timeout).
    expect(firstMs).toBeGreaterThanOrEqual(900);
    expect(secondMs).toBeLessThan(firstMs);
    expect(walFileSize(`${path}-wal`)).toBeGreaterThan(maxWalBytes);
    writer.close();
  });

  it('inside a transaction of the writer (a rule save folding), leaves the log to the check after it', () => {
    const { path, writer } = openWriter();
    writeRows(writer, 400);
    const size = walFileSize(`${path}-wal`);
    const bound = new WalBound(writer, `${path}-wal`, size, size / 4);
    // A checkpoint cannot run in a transaction (SQLite: "database table is locked"); counting
    // that as a failure put false failures in /metrics and the log each time a rule was saved
    // while the log was past the check threshold.
    writer.transaction(() => {
      writeRows(writer, 10);
      bound.check(size);
    })();
    expect(bound.failures).toBe(0);
    bound.check();
    expect(bound.failures).toBe(0);
    expect(walFileSize(`${path}-wal`)).toBe(0);
    writer.close();
  });
});
