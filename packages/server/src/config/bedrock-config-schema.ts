import type { InvocationLogMapping } from '@tokenwatch/core';
import { DEFAULT_INVOCATION_LOG_MAPPING } from '@tokenwatch/core';
import { z } from 'zod';

const identityPart = z.enum(['session-name', 'role-name', 'arn', 'none']);
const metadataKeys = z.array(z.string().min(1).max(256)).max(16);

/** How invocation-log records map onto users and apps (README § Bedrock invocation logs). */
const invocationLogsSchema = z
  .object({
    userMetadataKeys: metadataKeys.default([...DEFAULT_INVOCATION_LOG_MAPPING.userMetadataKeys]),
    appMetadataKeys: metadataKeys.default([...DEFAULT_INVOCATION_LOG_MAPPING.appMetadataKeys]),
    tagMetadataKeys: z
      .array(z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, 'must be a valid tag key'))
      .max(16)
      .default([]),
    principals: z
      .array(
        z
          .object({
            arn: z.string().min(1).max(2048),
            appId: z.string().min(1).max(256).optional(),
            userId: z.string().min(1).max(256).optional(),
          })
          .strict(),
      )
      .max(1000)
      .default([]),
    userFromIdentity: identityPart.default('session-name'),
    appFromIdentity: identityPart.default('role-name'),
    defaultUserId: z.string().min(1).max(256).default('unknown'),
    defaultAppId: z.string().min(1).max(256).default('bedrock'),
    includeErrors: z.boolean().default(true),
    /** Largest POST /v1/import/bedrock-logs body (records may carry whole prompts). */
    importMaxBodyBytes: z
      .number()
      .int()
      .min(1024)
      .max(64 * 1024 * 1024)
      .default(10 * 1024 * 1024),
  })
  .strict();

/** Hourly comparison with CloudWatch's AWS/Bedrock metrics (README § Reconciliation). */
const reconcileSchema = z
  .object({
    /** Run the job in `serve` / `worker`. */
    enabled: z.boolean().default(false),
    /** AWS region whose AWS/Bedrock metrics are compared (required when enabled). */
    region: z
      .string()
      .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region, e.g. us-east-1')
      .optional(),
    /** CloudWatch endpoint override (a VPC endpoint, or a local stand-in). */
    endpoint: z.url().optional(),
    /** The tokenwatch project whose usage is compared. */
    project: z.string().min(1).default('default'),
    everyMinutes: z.number().int().min(5).max(1440).default(60),
    /** Each run compares the last N complete hours again (late events, late metrics). */
    lookbackHours: z
      .number()
      .int()
      .min(1)
      .max(24 * 14)
      .default(6),
    /** An hour is compared only this long after it ended: CloudWatch publishes with a delay. */
    settleMinutes: z
      .number()
      .int()
      .min(0)
      .max(24 * 60)
      .default(15),
  })
  .strict()
  .refine((r) => !r.enabled || r.region !== undefined, {
    message: 'region is required when reconcile is enabled',
    path: ['region'],
  });

export const bedrockConfigSchema = z
  .object({
    invocationLogs: invocationLogsSchema.default(invocationLogsSchema.parse({})),
    reconcile: reconcileSchema.default(reconcileSchema.parse({})),
  })
  .strict();

export type BedrockConfig = z.infer<typeof bedrockConfigSchema>;
export const DEFAULT_BEDROCK_CONFIG: BedrockConfig = bedrockConfigSchema.parse({});

/** The reader's mapping from the config section. */
export function invocationLogMapping(
  config: BedrockConfig['invocationLogs'],
): InvocationLogMapping {
  return {
    userMetadataKeys: config.userMetadataKeys,
    appMetadataKeys: config.appMetadataKeys,
    tagMetadataKeys: config.tagMetadataKeys,
    principals: config.principals.map((p) => ({
      arn: p.arn,
      ...(p.appId !== undefined ? { appId: p.appId } : {}),
      ...(p.userId !== undefined ? { userId: p.userId } : {}),
    })),
    userFromIdentity: config.userFromIdentity,
    appFromIdentity: config.appFromIdentity,
    defaultUserId: config.defaultUserId,
    defaultAppId: config.defaultAppId,
    includeErrors: config.includeErrors,
  };
}
