import { gunzipSync } from 'node:zlib';
import { type PricedEvent, splitLogText } from '@tokenwatch/core';
import {
  addProblems,
  addSkip,
  type ImportTally,
  InvocationLogImporter,
} from '../bedrock/invocation-log-importer.js';
import { decodeLogBytes } from '../bedrock/log-files.js';
import { invocationLogMapping } from '../config/bedrock-config-schema.js';
import { createLambdaRuntime, type LambdaRuntime, loadLambdaConfig } from './lambda-runtime.js';

/** What a CloudWatch Logs subscription delivers to a Lambda function. */
export interface CloudWatchLogsEvent {
  awslogs: { data: string };
}

/** The parts of an S3 "object created" notification the handler reads. */
export interface S3Event {
  Records: Array<{
    eventName?: string;
    s3: { bucket: { name: string }; object: { key: string; size?: number } };
  }>;
}

/** Reads one S3 object's bytes (the real client on AWS; a local endpoint in tests). */
export type ObjectReader = (bucket: string, key: string) => Promise<Buffer>;

/**
 * Invocation-log records into DynamoDB through the same importer as the server's
 * `POST /v1/import/bedrock-logs`, with the project's rules, then the outbox is sent. A failure to
 * write throws: Lambda retries the invocation (CloudWatch Logs and S3 invoke asynchronously,
 * with retries and the function's dead-letter queue), and a retry can never count twice, every
 * event's id being its record's request id. Bad records are skipped, counted and logged.
 */
async function importRecords(
  rt: LambdaRuntime,
  records: readonly unknown[],
  source: string,
): Promise<ImportTally> {
  let alerts = 0;
  const importer = new InvocationLogImporter(
    {
      submit: async (events: readonly PricedEvent[]) => {
        const result = await rt.store.applyBatch(events, { nowMs: rt.now() });
        alerts += result.alerts.length;
        return result;
      },
    },
    rt.catalogs,
    invocationLogMapping(rt.config.bedrock.invocationLogs),
    rt.now,
  );
  const result = await importer.importRecords(
    records,
    { projectId: rt.config.projectId },
    (i) => `${source}#${i + 1}`,
  );
  const log = result.skipped > 0 ? rt.logger.warn : rt.logger.info;
  log.call(rt.logger, 'bedrock invocation logs imported', {
    source,
    records: result.records,
    imported: result.imported,
    duplicates: result.duplicates,
    conflicts: result.conflicts,
    skipped: result.skipped,
    skippedByReason: result.skippedByReason,
    examples: result.examples.slice(0, 5),
    alerts,
  });
  try {
    await rt.dispatcher.runOnce();
  } catch (err) {
    rt.logger.warn('outbox pass failed', { error: err as Error });
  }
  return result;
}

/** The `awslogs.data` of a subscription: base64 of gzip of `{"messageType","logEvents":[…]}`. */
export function decodeAwsLogs(data: string): { messageType: string | undefined; text: string } {
  const text = gunzipSync(Buffer.from(data, 'base64')).toString('utf8');
  let messageType: string | undefined;
  try {
    messageType = (JSON.parse(text) as { messageType?: string }).messageType;
  } catch {
    messageType = undefined;
  }
  return { messageType, text };
}

export function createCloudWatchLogsHandler(
  rt: LambdaRuntime,
): (event: CloudWatchLogsEvent) => Promise<ImportTally | undefined> {
  return async (event) => {
    let decoded: { messageType: string | undefined; text: string };
    try {
      decoded = decodeAwsLogs(event?.awslogs?.data ?? '');
    } catch (err) {
      // Not a payload any retry could fix: report it, do not fail the invocation forever.
      rt.logger.error('not an awslogs payload (base64 of gzip); skipped', { error: err as Error });
      return undefined;
    }
    // CloudWatch Logs checks a new subscription's destination with a control message.
    if (decoded.messageType === 'CONTROL_MESSAGE') return undefined;
    const { records, problems } = splitLogText(decoded.text);
    const tally = await importRecords(rt, records, 'awslogs');
    addProblems(tally, problems, 'awslogs');
    return tally;
  };
}

export function createS3Handler(
  rt: LambdaRuntime,
  readObject: ObjectReader,
): (event: S3Event) => Promise<ImportTally[]> {
  return async (event) => {
    const tallies: ImportTally[] = [];
    for (const record of event.Records ?? []) {
      const bucket = record.s3.bucket.name;
      // S3 notifications carry the key URL-encoded, spaces as '+'.
      const key = decodeURIComponent(record.s3.object.key.replace(/\+/g, ' '));
      const file = decodeLogBytes(await readObject(bucket, key));
      const { records, problems } = splitLogText(file.text);
      const where = `s3://${bucket}/${key}`;
      const tally = await importRecords(rt, records, where);
      addProblems(tally, problems, where);
      if (file.problem !== undefined) {
        tally.records++;
        addSkip(tally, { reason: 'unreadable', detail: file.problem, where });
        rt.logger.warn('part of an invocation-log object is unreadable', {
          where,
          problem: file.problem,
        });
      }
      tallies.push(tally);
    }
    return tallies;
  };
}

/** GetObject with the AWS SDK, loaded only in the function that needs it. */
export async function s3ObjectReader(rt: LambdaRuntime): Promise<ObjectReader> {
  const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
  const client = new S3Client({
    ...(rt.config.region !== undefined ? { region: rt.config.region } : {}),
    ...(rt.config.s3Endpoint !== undefined
      ? { endpoint: rt.config.s3Endpoint, forcePathStyle: true }
      : {}),
    ...(rt.config.localCredentials !== undefined
      ? { credentials: rt.config.localCredentials }
      : {}),
  });
  return async (bucket, key) => {
    const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return Buffer.from(
      await (out.Body as { transformToByteArray(): Promise<Uint8Array> }).transformToByteArray(),
    );
  };
}

let runtime: Promise<LambdaRuntime> | undefined;
const getRuntime = () => {
  runtime ??= createLambdaRuntime(loadLambdaConfig(process.env));
  return runtime;
};

/** Entry point of the CloudWatch Logs subscription function (`cloudWatchLogsHandler`). */
export async function cloudWatchLogsHandler(event: CloudWatchLogsEvent): Promise<void> {
  await createCloudWatchLogsHandler(await getRuntime())(event);
}

let reader: Promise<ObjectReader> | undefined;
/** Entry point of the S3 object-created function (`s3Handler`). */
export async function s3Handler(event: S3Event): Promise<void> {
  const rt = await getRuntime();
  reader ??= s3ObjectReader(rt);
  await createS3Handler(rt, await reader)(event);
}
