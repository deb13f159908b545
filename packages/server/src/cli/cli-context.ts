import { TokenwatchError } from '@tokenwatch/core';
import { type LoadedConfig, loadConfig } from '../config/load-config.js';

/** What every command gets: parsed flags, the environment, and where to write. */
export interface CliIo {
  env: Record<string, string | undefined>;
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** stderr is a terminal: progress may redraw one line. */
  stderrIsTTY?: boolean;
}

export interface CommonFlags {
  'data-dir'?: string | undefined;
  config?: string | undefined;
}

/** Loads the configuration for a command, with the flags that map onto it. */
export function configFromFlags(
  flags: CommonFlags & {
    port?: string | undefined;
    host?: string | undefined;
    /** postgres://… (scale-out store); the driver follows from the scheme. */
    store?: string | undefined;
    /** nats://… (scale-out queue). */
    queue?: string | undefined;
  },
  io: CliIo,
): LoadedConfig {
  const overrides: Array<{ path: string[]; value: unknown }> = [];
  if (flags['data-dir'] !== undefined)
    overrides.push({ path: ['dataDir'], value: flags['data-dir'] });
  if (flags.host !== undefined) overrides.push({ path: ['server', 'host'], value: flags.host });
  if (flags.port !== undefined) {
    const port = Number(flags.port);
    if (!/^\d+$/.test(flags.port)) {
      throw new TokenwatchError('invalid_argument', `--port must be a number, got "${flags.port}"`);
    }
    overrides.push({ path: ['server', 'port'], value: port });
  }
  if (flags.store !== undefined) overrides.push({ path: ['store', 'url'], value: flags.store });
  if (flags.queue !== undefined) overrides.push({ path: ['queue', 'url'], value: flags.queue });
  return loadConfig({ file: flags.config, env: io.env, overrides });
}

export const COMMON_OPTIONS = {
  'data-dir': { type: 'string' },
  config: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;
