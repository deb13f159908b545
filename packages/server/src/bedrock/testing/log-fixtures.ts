import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { constants, createGzip, gzipSync } from 'node:zlib';

/** The real-shaped invocation-log records kept with the core reader's tests. */
export const FIXTURE_DIR = new URL('../../../../core/src/bedrock/fixtures/', import.meta.url);

export type LogRecord = Record<string, unknown> & {
  requestId: string;
  timestamp: string;
  input?: Record<string, unknown>;
  output?: Record<string, unknown>;
};

export function loadFixtureRecords(): Map<string, LogRecord> {
  const out = new Map<string, LogRecord>();
  for (const name of readdirSync(FIXTURE_DIR).sort()) {
    if (!name.endsWith('.json')) continue;
    out.set(
      name.replace(/\.json$/, ''),
      JSON.parse(readFileSync(new URL(name, FIXTURE_DIR), 'utf8')) as LogRecord,
    );
  }
  return out;
}

/** A fixture moved to `atMs` with a fresh request id: the contract takes only recent events. */
export function redate(record: LogRecord, atMs: number, requestId = randomUUID()): LogRecord {
  const copy = structuredClone(record);
  copy.timestamp = new Date(Math.floor(atMs / 1000) * 1000).toISOString().replace('.000Z', 'Z');
  copy.requestId = requestId;
  return copy;
}

/** The four token classes of a record as the log states them (0 when absent). */
export function loggedTokens(r: LogRecord): {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
} {
  const n = (v: unknown) => (typeof v === 'number' ? v : 0);
  return {
    inputTokens: n(r.input?.inputTokenCount),
    outputTokens: n(r.output?.outputTokenCount),
    cacheReadTokens: n(r.input?.cacheReadInputTokenCount),
    cacheWriteTokens: n(r.input?.cacheWriteInputTokenCount),
  };
}

/** S3's key layout for invocation logs: `AWSLogs/<account>/BedrockModelInvocationLogs/<region>/YYYY/MM/DD/HH/`. */
export function s3LogDir(root: string, atMs: number, region = 'us-east-1'): string {
  const d = new Date(atMs);
  const p = (n: number) => String(n).padStart(2, '0');
  const dir = join(
    root,
    'AWSLogs',
    '123456789012',
    'BedrockModelInvocationLogs',
    region,
    String(d.getUTCFullYear()),
    p(d.getUTCMonth() + 1),
    p(d.getUTCDate()),
    p(d.getUTCHours()),
  );
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** One `.json.gz` object as S3 delivery writes it: gzip of JSON lines. */
export function writeJsonGz(path: string, lines: readonly unknown[]): void {
  writeFileSync(
    path,
    gzipSync(`${lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n')}\n`),
  );
}

/**
 * A `.json.gz` cut off right after its first `keep` records: they inflate whole, the rest is
 * lost with the gzip's tail (as an interrupted download or copy leaves it).
 */
export async function writeTruncatedJsonGz(
  path: string,
  records: readonly unknown[],
  keep: number,
): Promise<void> {
  const gzip = createGzip();
  const chunks: Buffer[] = [];
  gzip.on('data', (c: Buffer) => chunks.push(c));
  const flushed = () =>
    new Promise<void>((resolve) => gzip.flush(constants.Z_FULL_FLUSH, () => setImmediate(resolve)));
  for (const r of records.slice(0, keep)) gzip.write(`${JSON.stringify(r)}\n`);
  await flushed();
  const cut = Buffer.concat(chunks).length;
  for (const r of records.slice(keep)) gzip.write(`${JSON.stringify(r)}\n`);
  await new Promise<void>((resolve) => {
    gzip.once('end', resolve);
    gzip.end();
  });
  writeFileSync(path, Buffer.concat(chunks).subarray(0, cut));
}
