import { createServer, type IncomingMessage, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { readBody } from './read-body.js';

interface Outcome {
  error?: { code: string };
  body?: Buffer;
  /**
   * Checked a while after readBody settled: the request was destroyed before its body ended,
   * so it can be neither drained nor answered. (A request read to its end is destroyed by
   * Node itself, harmlessly.)
   */
  cutShort: boolean;
  /** The rest of the body could be read after the refusal, up to its end. */
  drainedToEnd: boolean;
}

let closeServer: (() => void) | undefined;
afterEach(() => closeServer?.());

/** Sends `chunks` (chunked, no Content-Length) to a server that runs readBody with `limit`. */
function readThroughServer(
  chunks: Buffer[],
  limit: number,
  headers: Record<string, string> = {},
): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const server = createServer(async (req: IncomingMessage, res) => {
      const outcome: Partial<Outcome> = {};
      try {
        outcome.body = await readBody(req, limit);
      } catch (err) {
        outcome.error = err as { code: string };
      }
      await new Promise((r) => setTimeout(r, 30));
      outcome.cutShort = req.destroyed && !req.complete;
      outcome.drainedToEnd = await new Promise<boolean>((r) => {
        if (req.complete) return r(true);
        if (req.destroyed) return r(false);
        req.once('end', () => r(true));
        req.once('close', () => r(req.complete));
        req.resume();
      });
      res.end('done');
      resolve(outcome as Outcome);
    });
    closeServer = () => server.close();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      const req = request({ host: '127.0.0.1', port, method: 'POST', headers }, (res) =>
        res.resume(),
      );
      req.on('error', reject);
      void (async () => {
        for (const chunk of chunks) {
          req.write(chunk);
          await new Promise((r) => setTimeout(r, 5));
        }
        req.end();
      })();
    });
  });
}

describe('readBody', () => {
  it('returns the whole body when it is within the limit', async () => {
    const outcome = await readThroughServer([Buffer.from('{"a":'), Buffer.from('1}')], 1024);
    expect(outcome.body?.toString()).toBe('{"a":1}');
  });

  it('refuses a chunked body over the limit but leaves the request open to be drained', async () => {
    const chunks = Array.from({ length: 8 }, () => Buffer.alloc(1024, 0x20));
    const outcome = await readThroughServer(chunks, 2048);
    expect(outcome.error?.code).toBe('payload_too_large');
    expect(outcome.cutShort).toBe(false);
    expect(outcome.drainedToEnd).toBe(true);
  });

  it('refuses a gzip body that inflates past the limit, leaving the request open', async () => {
    const bomb = gzipSync(Buffer.alloc(64 * 1024, 0x20));
    const outcome = await readThroughServer([bomb], 4096, { 'content-encoding': 'gzip' });
    expect(outcome.error?.code).toBe('payload_too_large');
    expect(outcome.cutShort).toBe(false);
    expect(outcome.drainedToEnd).toBe(true);
  });

  it('names a corrupt gzip body', async () => {
    const gz = gzipSync('{"a":1}');
    const outcome = await readThroughServer([gz.subarray(0, gz.length - 6)], 4096, {
      'content-encoding': 'gzip',
    });
    expect(outcome.error?.code).toBe('invalid_body');
  });
});
