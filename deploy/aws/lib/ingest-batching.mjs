/**
 * The ingest function's SQS batching, in a module of its own (no CDK import) so that
 * `npm run bench:aws` measures DynamoDB's write units at exactly these settings.
 *
 * Every rollup row and rule counter an invocation touches is written once, with the sum of the
 * invocation's events (one batch record, packages/server/src/adapters/store/dynamodb/batch-apply.ts),
 * so write units per event fall as invocations grow: a full batch of 1,000 messages (10,000
 * events at the SDK's 10 per message; Lambda's 6 MB payload is the other bound) costs about 1.6
 * write units per event on the bench's traffic, a 100-event invocation about 6.
 */
export const INGEST_BATCH_SIZE = 1_000;
/**
 * How long the event source mapping gathers messages before invoking with fewer than a full
 * batch: the most an event waits before it is counted. A longer window merges more at moderate
 * rates (fewer write units) and makes counters and alerts later.
 */
export const INGEST_BATCHING_WINDOW_SECONDS = 5;
