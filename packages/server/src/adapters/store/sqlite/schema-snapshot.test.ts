import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { FRESH_SCHEMA } from './fresh-schema.js';
import { MIGRATIONS } from './schema.js';
import { snapshotModule, snapshotSchema } from './schema-snapshot.js';
import { SqliteStore } from './sqlite-store.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** Everything a database holds: its objects' definitions and every table's rows. */
function contents(path: string) {
  const db = new Database(path, { readonly: true });
  try {
    const objects = db
      .prepare('SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name')
      .all() as { type: string; name: string; sql: string | null }[];
    const rows: Record<string, unknown[]> = {};
    for (const o of objects) {
      if (o.type === 'table') rows[o.name] = db.prepare(`SELECT * FROM ${o.name}`).all();
    }
    return { objects, rows };
  } finally {
    db.close();
  }
}

async function migratedFile(name: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'tw-schema-'));
  dirs.push(dir);
  const path = join(dir, name);
  const store = new SqliteStore({ path });
  await store.migrate();
  await store.close();
  return path;
}

describe('the fresh schema snapshot', () => {
  it('is what the migrations build (rewrite it with vitest -u after adding one)', async () => {
    await expect(snapshotModule(snapshotSchema(MIGRATIONS))).toMatchFileSnapshot(
      './fresh-schema.ts',
    );
    expect(FRESH_SCHEMA.version).toBe(MIGRATIONS.length);
  });

  it('gives a new file the same tables, indexes and rows as replaying every migration', async () => {
    const fromSnapshot = await migratedFile('snapshot.db');
    // An older file: the first migration only, then migrate() runs the rest one by one.
    const dir = mkdtempSync(join(tmpdir(), 'tw-schema-'));
    dirs.push(dir);
    const replayed = join(dir, 'replayed.db');
    const old = new Database(replayed);
    old.exec('CREATE TABLE schema_version (version INTEGER NOT NULL)');
    old.exec(MIGRATIONS[0] as string);
    old.prepare('INSERT INTO schema_version (version) VALUES (1)').run();
    old.close();
    const store = new SqliteStore({ path: replayed });
    await store.migrate();
    await store.close();

    const a = contents(fromSnapshot);
    const b = contents(replayed);
    expect(a.objects.length).toBeGreaterThan(40);
    expect(a.objects).toEqual(b.objects);
    expect(a.rows).toEqual(b.rows);
    expect(a.rows.schema_version).toEqual(MIGRATIONS.map((_, i) => ({ version: i + 1 })));
  });
});
