import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parseArgs } from 'node:util';
import { splitLogText, TokenwatchError } from '@tokenwatch/core';
import { openStore } from '../../adapters/store/open-store.js';
import {
  HttpImportDestination,
  type ImportDestination,
  StoreImportDestination,
} from '../../bedrock/import-destination.js';
import {
  addProblems,
  addSkip,
  emptyTally,
  type ImportTally,
  mergeTally,
} from '../../bedrock/invocation-log-importer.js';
import { listLogFiles, readLogFile } from '../../bedrock/log-files.js';
import { createProjectKey, DEFAULT_PROJECT_ID } from '../../bootstrap.js';
import { invocationLogMapping } from '../../config/bedrock-config-schema.js';
import { sqlitePath } from '../../config/config-schema.js';
import { makePrivateDir } from '../../util/private-files.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';

export const IMPORT_HELP = `tokenwatch import bedrock-logs <file|dir>… [--data-dir D | --url URL --key INGEST_KEY] [--project P] [--json]

Imports Amazon Bedrock model invocation logs: the .json.gz files S3 delivers (a directory is
walked recursively), JSON lines, pretty-printed or CloudWatch Logs exports. Each record becomes
one usage event with the id bedrock:<requestId> through the normal ingest path (validation,
pricing, dedupe, rules), so re-running an import, or importing calls the SDK already captured,
counts nothing twice. Bad records are skipped, counted and listed with their reason.

  --url URL --key KEY   send through a running server (POST /v1/import/bedrock-logs)
  --data-dir D          the server of D if it is running, else straight into D's store
  --project P           the project for a direct import (default "default")
  --json                print the summary as JSON`;

/** Records handed to the destination at a time (progress moves at least this often). */
const CHUNK_RECORDS = 2000;

interface Progress {
  file(index: number, total: number, path: string, tally: ImportTally): void;
  done(): void;
}

function progressReporter(io: CliIo): Progress {
  const tty = io.stderrIsTTY === true;
  let drawn = false;
  return {
    file(index, total, path, tally) {
      if (tty) {
        const width = 24;
        const filled = Math.round((index / Math.max(total, 1)) * width);
        io.stderr(
          `\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${index}/${total} files · ${tally.records} records · ${tally.imported} imported · ${tally.duplicates} duplicates · ${tally.skipped} skipped`,
        );
        drawn = true;
      } else if (index > 0) {
        io.stderr(
          `  ${index}/${total} files${path ? ` (next: ${path})` : ''}: ${tally.records} records so far\n`,
        );
      }
    },
    done() {
      if (drawn) io.stderr('\n');
    },
  };
}

export function formatTally(tally: ImportTally, files: number): string {
  const lines = [
    `bedrock-logs: ${files} file${files === 1 ? '' : 's'}, ${tally.records} records: ${tally.imported} imported, ${tally.duplicates} duplicates, ${tally.conflicts} conflicts, ${tally.skipped} skipped`,
  ];
  const reasons = Object.entries(tally.skippedByReason).sort((a, b) => (b[1] ?? 0) - (a[1] ?? 0));
  if (reasons.length > 0) {
    lines.push(`  skipped by reason: ${reasons.map(([r, n]) => `${r} ${n}`).join(', ')}`);
    for (const e of tally.examples.slice(0, 10)) {
      lines.push(
        `    ${e.where ?? '?'}: ${e.reason}: ${e.detail}${e.requestId ? ` (requestId ${e.requestId})` : ''}`,
      );
    }
  }
  if (tally.conflicts > 0) {
    lines.push(
      '  conflicts: a call counted before with other token counts; the first stays (GET /v1/conflicts)',
    );
  }
  return `${lines.join('\n')}\n`;
}

/** The URL of the server running on a data dir, if its server.json names a live process. */
function runningServer(serverFile: string): string | undefined {
  if (!existsSync(serverFile)) return undefined;
  try {
    const info = JSON.parse(readFileSync(serverFile, 'utf8')) as { url?: string; pid?: number };
    if (typeof info.url !== 'string') return undefined;
    // A server killed without its shutdown leaves the file behind: is its process still there?
    if (typeof info.pid === 'number') process.kill(info.pid, 0);
    return info.url;
  } catch (err) {
    // EPERM: the process exists but belongs to someone else, so a server does run there.
    return (err as { code?: string }).code === 'EPERM'
      ? (JSON.parse(readFileSync(serverFile, 'utf8')) as { url: string }).url
      : undefined;
  }
}

export async function importCommand(argv: string[], io: CliIo): Promise<number> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h' || what === 'help') {
    io.stdout(`${IMPORT_HELP}\n`);
    return what === undefined ? 2 : 0;
  }
  if (what !== 'bedrock-logs') {
    throw new TokenwatchError(
      'invalid_argument',
      `unknown import source "${what}"; the one source is bedrock-logs`,
    );
  }
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      ...COMMON_OPTIONS,
      url: { type: 'string' },
      key: { type: 'string' },
      project: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  if (values.help) {
    io.stdout(`${IMPORT_HELP}\n`);
    return 0;
  }
  if (positionals.length === 0) {
    throw new TokenwatchError('invalid_argument', 'name at least one file or directory to import');
  }
  if ((values.url === undefined) !== (values.key === undefined)) {
    throw new TokenwatchError('invalid_argument', '--url and --key go together');
  }

  const list = listLogFiles(positionals);
  const tally = emptyTally();
  for (const p of list.problems) {
    tally.records++;
    addSkip(tally, { reason: 'unreadable', detail: p.reason, where: p.path });
  }

  let destination: ImportDestination;
  let closeStore: (() => Promise<void>) | undefined;
  if (values.url !== undefined && values.key !== undefined) {
    destination = new HttpImportDestination(values.url.replace(/\/+$/, ''), values.key);
  } else {
    const config = configFromFlags(values, io);
    const serverFile = join(config.dataDir, 'server.json');
    // A first import may come before any `serve`: the store's directory may not exist yet.
    if (config.store.driver === 'sqlite') makePrivateDir(dirname(sqlitePath(config)));
    const store = await openStore(config, { thread: 'main' });
    closeStore = () => store.close();
    try {
      await store.migrate();
      const running = runningServer(serverFile);
      if (running !== undefined) {
        // A server runs on this data: go through it, so its live budget state and alerts see
        // the import at once.
        const url = running;
        const { key } = await createProjectKey(store, {
          projectId: values.project ?? DEFAULT_PROJECT_ID,
          role: 'ingest',
          name: 'bedrock-logs import',
          nowMs: Date.now(),
        });
        destination = new HttpImportDestination(url, key);
      } else {
        destination = await new StoreImportDestination(
          store,
          values.project ?? DEFAULT_PROJECT_ID,
          invocationLogMapping(config.bedrock.invocationLogs),
        ).start();
      }
    } catch (err) {
      await store.close();
      throw err;
    }
  }

  const progress = progressReporter(io);
  try {
    for (const [index, path] of list.files.entries()) {
      progress.file(index, list.files.length, path, tally);
      let text: string;
      try {
        const file = readLogFile(path);
        text = file.text;
        if (file.problem !== undefined) {
          tally.records++;
          addSkip(tally, { reason: 'unreadable', detail: file.problem, where: path });
        }
      } catch (err) {
        tally.records++;
        addSkip(tally, { reason: 'unreadable', detail: (err as Error).message, where: path });
        continue;
      }
      const { records, problems } = splitLogText(text);
      addProblems(tally, problems, path);
      for (let start = 0; start < records.length; start += CHUNK_RECORDS) {
        const chunk = records.slice(start, start + CHUNK_RECORDS);
        mergeTally(
          tally,
          await destination.importRecords(chunk, (i) => `${path}#${start + i + 1}`),
        );
      }
    }
    progress.file(list.files.length, list.files.length, '', tally);
  } finally {
    progress.done();
    await closeStore?.();
  }

  if (values.json) {
    io.stdout(
      `${JSON.stringify({ files: list.files.length, to: destination.description, ...tally })}\n`,
    );
  } else {
    io.stdout(formatTally(tally, list.files.length));
    if (destination.alertsFired > 0) {
      io.stdout(
        `  ${destination.alertsFired} alerts fired; the next \`tokenwatch serve\` on this data sends them\n`,
      );
    }
  }
  return 0;
}
