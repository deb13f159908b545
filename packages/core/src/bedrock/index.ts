export * from './identity-mapping.js';
export * from './invocation-log-reader.js';
export * from './log-text.js';
export * from './reconcile.js';
export * from './request-event-id.js';
export * from './slim-record.js';
