import { join } from 'node:path';
import { z } from 'zod';

/**
 * The one configuration schema. Sources, lowest precedence first: defaults, the config file
 * (`tokenwatch.json`), environment variables (`TOKENWATCH_*`), command-line flags. Parsed once
 * by `loadConfig`; every error is reported at start-up, not the first one only.
 */
export const configSchema = z
  .object({
    dataDir: z.string().min(1).default('.tokenwatch'),
    server: z
      .object({
        host: z.string().min(1).default('127.0.0.1'),
        port: z.number().int().min(0).max(65_535).default(8787),
        /** The URL users reach the server at, for printed links; defaults to http://host:port. */
        publicUrl: z.url().optional(),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8787 }),
    store: z
      .object({
        driver: z.literal('sqlite').default('sqlite'),
        /** SQLite file; defaults to `<dataDir>/tokenwatch.db`. */
        path: z.string().min(1).optional(),
        /** `full`: fsync at every commit (a 202 survives power loss). `normal`: survives a crash of the process only. */
        synchronous: z.enum(['full', 'normal']).default('full'),
        /** `worker` (default) runs SQLite in its own thread, in parallel with HTTP parsing. */
        thread: z.enum(['worker', 'main']).default('worker'),
      })
      .strict()
      .default({ driver: 'sqlite', synchronous: 'full', thread: 'worker' }),
    ingest: z
      .object({
        /** Largest request body, before and after gzip. */
        maxBodyBytes: z
          .number()
          .int()
          .min(1024)
          .max(16 * 1024 * 1024)
          .default(1024 * 1024),
        /** A flush (one transaction) takes at most this many events... */
        flushMaxEvents: z.number().int().min(1).max(100_000).default(5000),
        /** ...and waits at most this long for more to arrive. */
        flushMaxWaitMs: z.number().min(0).max(1000).default(2),
        /** Above this many events waiting for a flush, new requests get 503 + Retry-After. */
        maxQueuedEvents: z.number().int().min(1000).max(10_000_000).default(100_000),
      })
      .strict()
      .default({
        maxBodyBytes: 1024 * 1024,
        flushMaxEvents: 5000,
        flushMaxWaitMs: 2,
        maxQueuedEvents: 100_000,
      }),
    retention: z
      .object({
        minuteDays: z.number().int().min(1).max(90).default(7),
        /** Must exceed the 35 days of accepted lateness, so a redelivery can never count twice. */
        dedupeDays: z.number().int().min(36).max(3650).default(36),
      })
      .strict()
      .default({ minuteDays: 7, dedupeDays: 36 }),
    auth: z
      .object({
        /** How long a looked-up key is cached; a revocation takes effect within this time. */
        keyCacheSeconds: z.number().min(0).max(300).default(5),
      })
      .strict()
      .default({ keyCacheSeconds: 5 }),
    alerts: z
      .object({
        /** Allow webhook and Slack URLs on loopback and private networks (local use). Off by default: SSRF. */
        allowPrivateNetworks: z.boolean().default(false),
        /** SMTP server for email channels. */
        smtp: z
          .object({
            host: z.string().min(1),
            port: z.number().int().min(1).max(65_535).default(587),
            secure: z.boolean().default(false),
            user: z.string().optional(),
            pass: z.string().optional(),
            from: z.string().min(3),
          })
          .strict()
          .optional(),
        /** Per-attempt timeout of a channel send. */
        sendTimeoutMs: z.number().int().min(100).max(120_000).default(10_000),
        /** Deliveries older than this are dead-lettered. */
        maxDeliveryAgeHours: z
          .number()
          .min(0.01)
          .max(24 * 30)
          .default(24),
        /** POST /v1/check when budget state is unavailable: allow (`open`) or deny (`closed`). */
        enforcementFailMode: z.enum(['open', 'closed']).default('open'),
      })
      .strict()
      .default({
        allowPrivateNetworks: false,
        sendTimeoutMs: 10_000,
        maxDeliveryAgeHours: 24,
        enforcementFailMode: 'open',
      }),
    /** Rules defined in the file; `id` (default: from the name) and `project` (default "default") are optional. */
    rules: z.array(z.record(z.string(), z.unknown())).default([]),
    log: z
      .object({ level: z.enum(['debug', 'info', 'warn', 'error', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Where the SQLite file lives for a config. */
export function sqlitePath(config: Config): string {
  return config.store.path ?? join(config.dataDir, 'tokenwatch.db');
}
