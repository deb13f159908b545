#!/usr/bin/env node
import { App } from 'aws-cdk-lib';
import { TokenwatchStack } from '../lib/tokenwatch-stack.mjs';

const app = new App();
// Environment-agnostic: `cdk synth` needs no AWS account, credentials or network.
new TokenwatchStack(app, app.node.tryGetContext('stackName') ?? 'Tokenwatch', {
  description: 'tokenwatch: real-time LLM token-usage monitoring (SQS → Lambda → DynamoDB → SNS)',
});
