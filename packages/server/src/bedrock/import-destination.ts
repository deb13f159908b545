import type { InvocationLogMapping, PricedEvent, Store } from '@tokenwatch/core';
import { slimInvocationLogRecord } from '@tokenwatch/core';
import { postIdempotent } from '../demo/send-events.js';
import { ProjectCatalogs } from '../ingest/project-catalogs.js';
import {
  emptyTally,
  type ImportTally,
  InvocationLogImporter,
  mergeTally,
} from './invocation-log-importer.js';

/** Where `tokenwatch import bedrock-logs` sends records: a running server, or the store itself. */
export interface ImportDestination {
  readonly description: string;
  importRecords(
    records: readonly unknown[],
    where: (index: number) => string,
  ): Promise<ImportTally>;
  /** Alerts the import fired (direct mode only; a server sends its own). */
  readonly alertsFired: number;
}

/** At most this many records per request, and about this many bytes. */
const HTTP_BATCH_RECORDS = 500;
const HTTP_BATCH_BYTES = 2 * 1024 * 1024;

/**
 * Through a running server's `POST /v1/import/bedrock-logs`: the server's mapping, rules and
 * live state apply. Records are slimmed first (no prompt leaves the machine); a request that
 * fails transiently is sent again as is, which can never count twice (the ids are the records').
 */
export class HttpImportDestination implements ImportDestination {
  readonly alertsFired = 0;
  constructor(
    private readonly url: string,
    private readonly key: string,
  ) {}

  get description(): string {
    return this.url;
  }

  async importRecords(
    records: readonly unknown[],
    where: (index: number) => string,
  ): Promise<ImportTally> {
    const tally = emptyTally();
    let start = 0;
    while (start < records.length) {
      const batch: string[] = [];
      let bytes = 0;
      while (start + batch.length < records.length && batch.length < HTTP_BATCH_RECORDS) {
        const json =
          JSON.stringify(slimInvocationLogRecord(records[start + batch.length])) ?? 'null';
        if (batch.length > 0 && bytes + json.length > HTTP_BATCH_BYTES) break;
        batch.push(json);
        bytes += json.length + 1;
      }
      const { json } = await postIdempotent(
        this.url,
        '/v1/import/bedrock-logs',
        this.key,
        `{"records":[${batch.join(',')}]}`,
        200,
      );
      const answer = json as ImportTally;
      const offset = start;
      // The server labels records by their index in the request: put the file's labels back.
      answer.examples = answer.examples.map((e) => {
        const m = /^record (\d+)$/.exec(e.where ?? '');
        return m ? { ...e, where: where(offset + Number(m[1])) } : e;
      });
      mergeTally(tally, answer);
      start += batch.length;
    }
    return tally;
  }
}

/**
 * Straight into the store (no server running): the same importer, validation and pricing as
 * the server's; the store evaluates the project's rules in its own transaction. Alerts fired
 * wait in the outbox for the next `tokenwatch serve` to send them.
 */
export class StoreImportDestination implements ImportDestination {
  alertsFired = 0;
  private readonly importer: InvocationLogImporter;

  constructor(
    store: Store,
    private readonly projectId: string,
    mapping: InvocationLogMapping,
    now: () => number = Date.now,
  ) {
    const sink = {
      submit: async (events: readonly PricedEvent[]) => {
        const result = await store.applyBatch(events, { nowMs: now() });
        this.alertsFired += result.alerts.length;
        return result;
      },
    };
    this.importer = new InvocationLogImporter(
      sink,
      new ProjectCatalogs(store, 30_000, now),
      mapping,
      now,
    );
  }

  get description(): string {
    return `the store (project ${this.projectId})`;
  }

  async start(): Promise<this> {
    return this;
  }

  importRecords(
    records: readonly unknown[],
    where: (index: number) => string,
  ): Promise<ImportTally> {
    return this.importer.importRecords(records, { projectId: this.projectId }, where);
  }
}
