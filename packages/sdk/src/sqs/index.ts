export { createSqsTransport, packMessages, type SqsTransportOptions } from './sqs-transport.js';
