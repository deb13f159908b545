import { parseArgs } from 'node:util';
import { TokenwatchError } from '@tokenwatch/core';
import { createFirstKeys, DEFAULT_PROJECT_ID } from '../../bootstrap.js';
import type { CliIo } from '../cli-context.js';

export const AWS_HELP = `tokenwatch aws create-keys --table T [--region R] [--project P] [--endpoint URL] [--force]

Creates the first admin and ingest keys of an AWS deployment (the CDK stack's table: the stack's
CreateKeysCommand output) and prints them ONCE on stdout; only their hashes are stored. The
functions never create or log keys. AWS credentials come from the usual chain (environment,
profile, role) and need dynamodb:GetItem, PutItem, Query on the table.

  --table T       the DynamoDB table (output TableName)
  --region R      its region (default: AWS_REGION / the profile's region)
  --project P     the project (default "default"; created if missing)
  --endpoint URL  DynamoDB endpoint override (a VPC endpoint, or a local DynamoDB)
  --force         create another pair even if the project has an active admin key`;

export async function awsCommand(argv: string[], io: CliIo): Promise<number> {
  const [action, ...rest] = argv;
  if (action === undefined || action === '--help' || action === '-h' || action === 'help') {
    io.stdout(`${AWS_HELP}\n`);
    return action === undefined ? 2 : 0;
  }
  if (action !== 'create-keys') {
    throw new TokenwatchError('invalid_argument', `unknown aws action "${action}"\n${AWS_HELP}`);
  }
  const { values } = parseArgs({
    args: rest,
    options: {
      table: { type: 'string' },
      region: { type: 'string' },
      project: { type: 'string' },
      endpoint: { type: 'string' },
      force: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    io.stdout(`${AWS_HELP}\n`);
    return 0;
  }
  if (!values.table) {
    throw new TokenwatchError(
      'invalid_argument',
      '--table must name the DynamoDB table (the stack output TableName)',
    );
  }
  if (values.endpoint !== undefined && !/^https?:\/\//.test(values.endpoint)) {
    throw new TokenwatchError('invalid_argument', '--endpoint must be an http(s):// URL');
  }
  // Loaded only here: the other commands never pull in the DynamoDB client.
  const { DynamoDbStore } = await import('../../adapters/store/dynamodb/dynamodb-store.js');
  const store = new DynamoDbStore({
    tableName: values.table,
    region: values.region ?? io.env.AWS_REGION ?? io.env.AWS_DEFAULT_REGION,
    endpoint: values.endpoint,
    credentials: undefined,
  });
  try {
    const keys = await createFirstKeys(store, {
      projectId: values.project ?? DEFAULT_PROJECT_ID,
      nowMs: Date.now(),
      force: values.force === true,
    });
    if (keys.projectCreated) io.stderr(`created project "${keys.projectId}"\n`);
    io.stderr('store these keys now: they are shown once and kept only as hashes\n');
    io.stdout(
      `project: ${keys.projectId}\nadmin key: ${keys.adminKey}\ningest key: ${keys.ingestKey}\n`,
    );
    return 0;
  } finally {
    await store.close();
  }
}
