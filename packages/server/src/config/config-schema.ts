import { join } from 'node:path';
import { z } from 'zod';
import { bedrockConfigSchema, DEFAULT_BEDROCK_CONFIG } from './bedrock-config-schema.js';

/** Scale-out store: PostgreSQL (see docs/deploy.md). */
const postgresStoreSchema = z
  .object({
    driver: z.literal('postgres'),
    /** postgres://user:password@host:5432/database */
    url: z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL'),
    /** Schema holding tokenwatch's tables (created by the first start). */
    schema: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]{0,62}$/)
      .default('public'),
    /** Connections per process. */
    poolSize: z.number().int().min(1).max(100).default(4),
  })
  .strict();

/**
 * Scale-out queue: NATS JetStream. The stream and its durable pull consumer are created, or
 * checked and updated, at start-up with these settings (see docs/deploy.md § JetStream).
 */
const natsQueueSchema = z
  .object({
    driver: z.literal('nats'),
    /** nats://host:4222; several servers of a cluster separated by commas. */
    url: z.string().regex(/^(nats|tls):\/\//, 'must be a nats:// URL'),
    stream: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .default('TOKENWATCH_EVENTS'),
    subject: z
      .string()
      .regex(/^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/)
      .default('tokenwatch.events'),
    /** The bare subject's durable consumer, and the prefix of each partition's (`<consumer>-p<n>`). */
    consumer: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,64}$/)
      .default('tokenwatch-workers'),
    /** Stream replicas (1 on a single server; 3 on a 3-node cluster for durability). */
    replicas: z.number().int().min(1).max(5).default(1),
    /** JetStream's redelivery cap; -1 (default): never give up on a stored batch. Poison is decided by the worker. */
    maxDeliver: z.number().int().min(-1).max(10_000).default(-1),
    /** How long a worker may hold a message before JetStream redelivers it. */
    ackWaitMs: z.number().int().min(500).max(3_600_000).default(30_000),
    /** Publishes with the same Nats-Msg-Id inside this window are stored once. */
    duplicateWindowMs: z.number().int().min(1_000).max(86_400_000).default(120_000),
    /** Unconsumed batches older than this are dropped by the stream. */
    maxAgeHours: z
      .number()
      .min(1)
      .max(24 * 365)
      .default(24 * 7),
    /** A publish not acknowledged by the stream within this time answers 503. */
    publishTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
    /** Messages a worker takes per transaction; it holds at most twice as many un-acked. */
    fetchMaxMessages: z.number().int().min(1).max(1_000).default(64),
    /**
     * Partitions of the stream: `serve` publishes an event to `<subject>.<hash(project, user) mod
     * partitions>` and each partition is consumed by one worker at a time, so no two workers
     * update the same rollup row. The same value in `serve` and every worker; change it only
     * with the stream drained.
     */
    partitions: z.number().int().min(1).max(256).default(8),
    /** A message failing this many times with a non-retryable error is terminated and recorded. */
    poisonAfterAttempts: z.number().int().min(1).max(100).default(5),
  })
  .strict();

/** A tag key, as the event contract allows it. */
const TAG_KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/** Default attributes naming the user of an OTLP span (README § OTLP). */
export const DEFAULT_OTLP_USER_ATTRIBUTES = [
  'user.id',
  'enduser.id',
  'gen_ai.user.id',
  'ai.telemetry.metadata.userId',
  'traceloop.association.properties.user_id',
  'session.id',
];

/** `POST /v1/traces`: how GenAI spans become usage events (README § OTLP). */
const otlpSchema = z
  .object({
    /** Largest request body, before and after gzip (OTLP answers 413 above it). */
    maxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(16 * 1024 * 1024),
    /** Span or resource attributes naming the user, in order; the first present wins. */
    userAttributes: z
      .array(z.string().min(1).max(256))
      .min(1)
      .max(32)
      .default(DEFAULT_OTLP_USER_ATTRIBUTES),
    /** The user of a span that names none. */
    defaultUserId: z.string().min(1).max(256).default('anonymous'),
    /**
     * Attributes kept as tags (an allow-list; nothing else becomes a tag): the attribute name as
     * the tag key, or `{ "attribute": …, "tag": … }` to rename it.
     */
    tagAttributes: z
      .array(
        z.union([
          z
            .string()
            .regex(TAG_KEY, 'a tag key: 1-64 of A-Z a-z 0-9 _ . : - (or use {attribute, tag})'),
          z
            .object({ attribute: z.string().min(1).max(256), tag: z.string().regex(TAG_KEY) })
            .strict(),
        ]),
      )
      .max(16)
      .default([]),
  })
  .strict();

/** Defaults of `http.*`; see `httpLimitsSchema` and README § HTTP limits for why these values. */
export const DEFAULT_HTTP_LIMITS = {
  maxConnections: 16_384,
  maxPipelinedRequests: 8,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 60_000,
  keepAliveTimeoutMs: 65_000,
  idleTimeoutMs: 120_000,
};

/** `http.*`: what one client may hold of the server. */
const httpLimitsSchema = z
  .object({
    /**
     * Open connections accepted at once; more are closed as they arrive. Above 10,000 so ten
     * thousand idle connections still leave room for health checks and real clients.
     */
    maxConnections: z.number().int().min(16).max(1_000_000).default(16_384),
    /**
     * Requests one connection may have waiting for their answer (HTTP/1.1 pipelining). One more
     * closes the connection: a client that sends and never reads cannot make the server hold its
     * answers. Clients that wait for each answer (all usual ones) use 1.
     */
    maxPipelinedRequests: z.number().int().min(1).max(1_000).default(8),
    /** The request line and headers must arrive within this time (slowloris). */
    headersTimeoutMs: z.number().int().min(100).max(300_000).default(10_000),
    /** The whole request, body included, must arrive within this time. */
    requestTimeoutMs: z.number().int().min(100).max(3_600_000).default(60_000),
    /** An idle keep-alive connection is closed after this time (above usual proxies' 60 s). */
    keepAliveTimeoutMs: z.number().int().min(100).max(3_600_000).default(65_000),
    /** A connection with no traffic either way (one that never sends a request) is closed. */
    idleTimeoutMs: z.number().int().min(100).max(3_600_000).default(120_000),
  })
  .strict()
  .refine((h) => h.headersTimeoutMs <= h.requestTimeoutMs, {
    message: 'headersTimeoutMs must not exceed requestTimeoutMs',
    path: ['headersTimeoutMs'],
  });

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
    /**
     * Limits of the HTTP server against slow, idle and pipelining clients (README § HTTP limits).
     * An idle connection costs about 8.5 KB; a pipelining one at most `maxPipelinedRequests`
     * responses.
     */
    http: httpLimitsSchema.default(DEFAULT_HTTP_LIMITS),
    store: z
      .discriminatedUnion('driver', [
        z
          .object({
            driver: z.literal('sqlite').default('sqlite'),
            /** SQLite file; defaults to `<dataDir>/tokenwatch.db`. */
            path: z.string().min(1).optional(),
            /** `full`: fsync at every commit (a 202 survives power loss). `normal`: survives a crash of the process only. */
            synchronous: z.enum(['full', 'normal']).default('full'),
            /** `worker` (default) runs SQLite in its own thread, in parallel with HTTP parsing. */
            thread: z.enum(['worker', 'main']).default('worker'),
            /**
             * A 202 needs only the id claims and an append to the event log; the rollups and rule
             * counters are folded in from it this often (reads fold first and never wait for it).
             */
            foldIntervalMs: z.number().int().min(1).max(60_000).default(1_000),
            /** Fold at once when this many events wait (bounds memory and the replay after a crash). */
            foldMaxEvents: z.number().int().min(1).max(1_000_000).default(200_000),
            /**
             * Events a fold plans at once (a chunk): a fold at the normal pace is one chunk, a
             * backlog is split. Default: 2,000 per MiB of `maxWalMiB` (128,000; see the README).
             */
            foldChunkEvents: z.number().int().min(1).max(1_000_000).optional(),
            /**
             * Rollup rows (and events accumulated) per fold transaction: what bounds the WAL a
             * fold writes between checkpoints, and how long a write queued meanwhile waits.
             * Default: a quarter of `maxWalMiB` at 8 KiB a row (2,048 for 64 MiB).
             */
            foldSliceRows: z.number().int().min(1).max(1_000_000).optional(),
            /** The write-ahead log is checkpointed and truncated before it grows past this many MiB. */
            maxWalMiB: z.number().int().min(1).max(65_536).default(64),
            /** Heap the writer's id caches may hold (MiB, by estimate); past it ids are read again. */
            idCacheMiB: z.number().int().min(1).max(65_536).default(64),
            /** Heap the writer's folded rule-counter cache may hold (MiB, by estimate). */
            counterCacheMiB: z.number().int().min(1).max(65_536).default(32),
          })
          .strict(),
        postgresStoreSchema,
      ])
      .default({
        driver: 'sqlite',
        synchronous: 'full',
        thread: 'worker',
        foldIntervalMs: 1_000,
        foldMaxEvents: 200_000,
        maxWalMiB: 64,
        idCacheMiB: 64,
        counterCacheMiB: 32,
      }),
    /** Where `serve` puts accepted events: committed in-process (default) or a durable queue. */
    queue: z
      .discriminatedUnion('driver', [
        z.object({ driver: z.literal('embedded') }).strict(),
        natsQueueSchema,
      ])
      .default({ driver: 'embedded' }),
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
    otlp: otlpSchema.default({
      maxBodyBytes: 16 * 1024 * 1024,
      userAttributes: DEFAULT_OTLP_USER_ATTRIBUTES,
      defaultUserId: 'anonymous',
      tagAttributes: [],
    }),
    retention: z
      .object({
        minuteDays: z.number().int().min(1).max(90).default(7),
        /** Must exceed the 35 days of accepted lateness, so a redelivery can never count twice. */
        dedupeDays: z.number().int().min(36).max(3650).default(36),
        /**
         * Alerts, finished deliveries, conflicts and queue poison messages are deleted after this
         * many days. More than the 35 days of accepted lateness, so a deleted alert cannot fire again.
         */
        historyDays: z.number().int().min(36).max(3650).default(90),
      })
      .strict()
      .default({ minuteDays: 7, dedupeDays: 36, historyDays: 90 }),
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
        /**
         * How long a delivery being sent is leased to the process sending it (at least twice
         * sendTimeoutMs is taken): after a crash, its next attempt waits for the lease to end.
         */
        deliveryLeaseMs: z.number().int().min(1_000).max(3_600_000).default(60_000),
        /** Deliveries older than this are dead-lettered. */
        maxDeliveryAgeHours: z
          .number()
          .min(0.01)
          .max(24 * 30)
          .default(24),
        /** POST /v1/check when budget state is unavailable: allow (`open`) or deny (`closed`). */
        enforcementFailMode: z.enum(['open', 'closed']).default('open'),
        /**
         * How long POST /v1/check answers from a budget counter before reading it again: how
         * fresh checks are in scale-out mode and on AWS (this process's own commits count at once).
         */
        checkCacheMs: z.number().int().min(0).max(60_000).default(250),
      })
      .strict()
      .default({
        allowPrivateNetworks: false,
        sendTimeoutMs: 10_000,
        deliveryLeaseMs: 60_000,
        maxDeliveryAgeHours: 24,
        enforcementFailMode: 'open',
        checkCacheMs: 250,
      }),
    /** Bedrock invocation-log capture and CloudWatch reconciliation (see bedrock-config-schema.ts). */
    bedrock: bedrockConfigSchema.default(DEFAULT_BEDROCK_CONFIG),
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
  return (
    (config.store.driver === 'sqlite' ? config.store.path : undefined) ??
    join(config.dataDir, 'tokenwatch.db')
  );
}

export type PostgresStoreConfig = z.infer<typeof postgresStoreSchema>;
export type NatsQueueConfig = z.infer<typeof natsQueueSchema>;
export type OtlpConfig = z.infer<typeof otlpSchema>;
export type HttpLimitsConfig = z.infer<typeof httpLimitsSchema>;
