import type { Server } from 'node:http';
import { TokenwatchError } from '@tokenwatch/core';

/** Listens, or fails with an error that says which address and why (EADDRINUSE: taken). */
export async function listen(server: Server, host: string, port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException) => {
      const why =
        err.code === 'EADDRINUSE'
          ? 'the port is already in use by another process (choose another with --port or server.port)'
          : err.code === 'EACCES'
            ? 'permission denied (ports below 1024 need privileges)'
            : err.code === 'EADDRNOTAVAIL'
              ? 'this machine has no such address (check --host or server.host)'
              : err.message;
      reject(
        new TokenwatchError('unavailable', `cannot listen on ${host}:${port}: ${why}`, {
          cause: err,
        }),
      );
    };
    server.once('error', failed);
    server.listen(port, host, () => {
      server.off('error', failed);
      resolve();
    });
  });
}
