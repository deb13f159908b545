/**
 * The correlation rule between Bedrock's two ways in (see README § Bedrock invocation logs):
 * a call captured by the SDK's Bedrock middleware and the same call read from Bedrock's model
 * invocation log both carry the AWS request id (`x-amzn-RequestId`, the log's `requestId`), and
 * both become the usage event `bedrock:<requestId>`. Whichever arrives first is counted; the
 * other is absorbed by the ordinary event-id dedupe.
 */
export const BEDROCK_REQUEST_ID_PREFIX = 'bedrock:';

/** AWS request ids are UUIDs; anything this long or with control characters is not one. */
const REQUEST_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$/;

/** The event id of the Bedrock call with this AWS request id, or undefined if it is not one. */
export function bedrockRequestEventId(requestId: unknown): string | undefined {
  if (typeof requestId !== 'string' || !REQUEST_ID.test(requestId)) return undefined;
  return `${BEDROCK_REQUEST_ID_PREFIX}${requestId}`;
}

/** True for event ids made by `bedrockRequestEventId`. */
export function isBedrockRequestEventId(eventId: string): boolean {
  return (
    eventId.startsWith(BEDROCK_REQUEST_ID_PREFIX) &&
    REQUEST_ID.test(eventId.slice(BEDROCK_REQUEST_ID_PREFIX.length))
  );
}
