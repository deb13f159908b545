import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { constants, gunzipSync } from 'node:zlib';

/** Names a directory walk picks up: what S3 delivers (`.json.gz`), exports and JSON lines. */
const LOG_FILE = /\.(json|jsonl|ndjson|log|txt)(\.gz)?$|\.gz$/i;

export interface LogFileList {
  files: string[];
  /** Paths that do not exist or cannot be listed. */
  problems: Array<{ path: string; reason: string }>;
}

/**
 * The files to import, in a stable order: files named on the command line as given, and under
 * each named directory every log-looking file, recursively, sorted by path (S3's key layout
 * `…/YYYY/MM/DD/HH/…` then reads in time order).
 */
export function listLogFiles(paths: readonly string[]): LogFileList {
  const out: LogFileList = { files: [], problems: [] };
  const walk = (dir: string) => {
    let entries: string[];
    try {
      entries = readdirSync(dir).sort();
    } catch (err) {
      out.problems.push({ path: dir, reason: (err as Error).message });
      return;
    }
    for (const name of entries) {
      const path = join(dir, name);
      let isDir: boolean;
      try {
        isDir = statSync(path).isDirectory();
      } catch (err) {
        out.problems.push({ path, reason: (err as Error).message });
        continue;
      }
      if (isDir) walk(path);
      else if (LOG_FILE.test(name)) out.files.push(path);
    }
  };
  for (const path of paths) {
    try {
      if (statSync(path).isDirectory()) walk(path);
      else out.files.push(path);
    } catch (err) {
      out.problems.push({ path, reason: (err as Error).message });
    }
  }
  return out;
}

export interface LogFileText {
  text: string;
  /** Set when only part of the file could be read (a truncated or corrupt gzip). */
  problem?: string;
}

/**
 * A log file's text, gunzipped when it is gzip (by its magic bytes, whatever its name). A
 * truncated or corrupt gzip gives what inflates before the damage, and says so: the records in
 * it still count, the rest is reported, nothing is silently lost.
 */
export function readLogFile(path: string): LogFileText {
  return decodeLogBytes(readFileSync(path));
}

/** The text of a log object's bytes (an S3 object, a file): gunzipped when gzip, salvaged when cut. */
export function decodeLogBytes(bytes: Buffer): LogFileText {
  if (bytes.length < 2 || bytes[0] !== 0x1f || bytes[1] !== 0x8b) {
    return { text: bytes.toString('utf8') };
  }
  try {
    return { text: gunzipSync(bytes).toString('utf8') };
  } catch (err) {
    let salvaged = Buffer.alloc(0);
    try {
      salvaged = gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH });
    } catch {
      // corrupt from the start: nothing to salvage
    }
    return {
      text: salvaged.toString('utf8'),
      problem: `the gzip is truncated or corrupt (${(err as Error).message}); ${salvaged.length} bytes were readable before the damage`,
    };
  }
}
