import { chmodSync, closeSync, mkdirSync, openSync, statSync } from 'node:fs';

/**
 * The data dir holds usage of every user and the hashes of every API key: it is the owner's
 * only. Directories are created 0700 and files 0600, whatever the process umask.
 */

/**
 * Creates `dir` (and missing parents) owner-only. A directory that exists is left as it is (it
 * may be shared on purpose); returns whether others can enter it, for the caller to warn.
 */
export function makePrivateDir(dir: string): { othersCanEnter: boolean } {
  const firstCreated = mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir applies the umask; a umask that takes owner bits away is undone only on what we made.
  if (firstCreated !== undefined) chmodSync(dir, 0o700);
  return { othersCanEnter: (statSync(dir).mode & 0o077) !== 0 };
}

/**
 * Creates a SQLite database file owner-only before SQLite opens it (SQLite gives the -wal and
 * -shm files the database file's mode), and tightens files an older version left 0644.
 */
export function createPrivateDatabaseFile(path: string): void {
  closeSync(openSync(path, 'a', 0o600));
  for (const file of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) {
    try {
      chmodSync(file, 0o600);
    } catch {
      // Not there (SQLite creates it with the database file's mode), or not ours to change.
    }
  }
}

export function isOnDisk(path: string): boolean {
  return path !== '' && path !== ':memory:' && !path.startsWith('file:');
}
