import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import {
  BatchWriteCommand,
  DynamoDBDocumentClient,
  QueryCommand,
  type QueryCommandOutput,
} from '@aws-sdk/lib-dynamodb';
import type {
  ReconciliationRow,
  ReconciliationStore,
  StoredReconciliationRow,
} from '@tokenwatch/core';
import { storeError } from '../store/dynamodb/dynamodb-io.js';
import { storedRow } from './sqlite-reconciliation-store.js';

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * Reconciliation results in the stack's DynamoDB table: one item per row under `R#<project>`,
 * sorted by hour (`<hour ISO>#<regions>#<model>#<metric>`), so a range is one Query.
 */
export class DynamoDbReconciliationStore implements ReconciliationStore {
  private readonly doc: DynamoDBDocumentClient;

  constructor(
    private readonly options: {
      tableName: string;
      region?: string | undefined;
      endpoint?: string | undefined;
      credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
    },
  ) {
    this.doc = DynamoDBDocumentClient.from(
      new DynamoDBClient({
        ...(options.region !== undefined ? { region: options.region } : {}),
        ...(options.endpoint !== undefined ? { endpoint: options.endpoint } : {}),
        ...(options.credentials !== undefined ? { credentials: options.credentials } : {}),
      }),
      { marshallOptions: { removeUndefinedValues: true } },
    );
  }

  private async query(projectId: string, fromMs: number, toMs: number) {
    const items: Record<string, unknown>[] = [];
    let start: QueryCommandOutput['LastEvaluatedKey'];
    do {
      const page = await this.doc.send(
        new QueryCommand({
          TableName: this.options.tableName,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: {
            ':pk': `R#${projectId}`,
            ':from': iso(fromMs),
            // Every sk of an hour before toMs sorts below the ISO of toMs itself.
            ':to': iso(toMs - 1),
          },
          ...(start ? { ExclusiveStartKey: start } : {}),
        }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items.filter((i) => Number(i.hourStartMs) >= fromMs && Number(i.hourStartMs) < toMs);
  }

  private async batch(requests: Record<string, unknown>[]): Promise<void> {
    for (let i = 0; i < requests.length; i += 25) {
      let pending = requests.slice(i, i + 25);
      for (let attempt = 0; pending.length > 0; attempt++) {
        if (attempt > 8) throw new Error('DynamoDB kept unprocessed items');
        const out = await this.doc.send(
          new BatchWriteCommand({ RequestItems: { [this.options.tableName]: pending } }),
        );
        pending = (out.UnprocessedItems?.[this.options.tableName] ?? []) as Record<
          string,
          unknown
        >[];
        if (pending.length > 0) await new Promise((r) => setTimeout(r, 50 * 2 ** attempt));
      }
    }
  }

  async replace(
    projectId: string,
    regions: string,
    fromMs: number,
    toMs: number,
    rows: readonly ReconciliationRow[],
    computedAtMs: number,
  ): Promise<void> {
    try {
      const pk = `R#${projectId}`;
      const old = (await this.query(projectId, fromMs, toMs)).filter((i) => i.regions === regions);
      const fresh = new Map(
        rows.map((r) => [
          `${iso(r.hourStartMs)}#${regions}#${r.modelId}#${r.metric}`,
          {
            pk,
            sk: `${iso(r.hourStartMs)}#${regions}#${r.modelId}#${r.metric}`,
            projectId,
            regions,
            hourStartMs: r.hourStartMs,
            modelId: r.modelId,
            metric: r.metric,
            reported: r.reported,
            captured: r.captured,
            settled: r.settled,
            computedAtMs,
          },
        ]),
      );
      const deletes = old
        .filter((i) => !fresh.has(String(i.sk)))
        .map((i) => ({ DeleteRequest: { Key: { pk, sk: i.sk } } }));
      const puts = [...fresh.values()].map((Item) => ({ PutRequest: { Item } }));
      await this.batch([...puts, ...deletes]);
    } catch (err) {
      throw storeError(err, 'replace reconciliation');
    }
  }

  async list(projectId: string, fromMs: number, toMs: number): Promise<StoredReconciliationRow[]> {
    try {
      const items = await this.query(projectId, fromMs, toMs);
      return items.map((i) =>
        storedRow({
          projectId,
          regions: String(i.regions),
          hourStartMs: Number(i.hourStartMs),
          modelId: String(i.modelId),
          metric: String(i.metric),
          reported: Number(i.reported),
          captured: Number(i.captured),
          settled: i.settled === true,
          computedAtMs: Number(i.computedAtMs),
        }),
      );
    } catch (err) {
      throw storeError(err, 'list reconciliation');
    }
  }

  async close(): Promise<void> {
    this.doc.destroy();
  }
}
