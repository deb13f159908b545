import type { AddressInfo } from 'node:net';
import dynalite from 'dynalite';

export interface LocalDynamo {
  endpoint: string;
  /** Static credentials the SDK signs with (dynalite checks the signature's shape only). */
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  close(): Promise<void>;
}

/**
 * Starts dynalite (a DynamoDB API implementation on LevelDB, in memory here) on loopback with
 * instant table creation. The store under test talks to it over HTTP with the real AWS SDK.
 */
export async function startDynalite(): Promise<LocalDynamo> {
  const server = dynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    region: 'us-east-1',
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
