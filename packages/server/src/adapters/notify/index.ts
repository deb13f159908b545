export {
  createEmailNotifier,
  type EmailContent,
  type EmailNotifierOptions,
  emailContent,
  type SmtpConfig,
} from './email/email-notifier.js';
export * from './guarded-post.js';
export { type AddressClass, type AddressKind, classifyAddress } from './ip-classify.js';
export { createLogNotifier } from './log/log-notifier.js';
export { createNotifiers, type NotifierRegistryOptions } from './notifier-registry.js';
export * from './render-alert.js';
export {
  createSlackNotifier,
  escapeSlack,
  type SlackNotifierOptions,
  type SlackPayload,
  slackPayload,
} from './slack/slack-notifier.js';
export * from './ssrf-guard.js';
export * from './webhook/webhook-notifier.js';
