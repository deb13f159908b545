#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { TokenwatchError } from '@tokenwatch/core';
import type { CliIo } from './cli/cli-context.js';
import { AWS_HELP, awsCommand } from './cli/commands/aws-command.js';
import { DEMO_HELP, demoCommand } from './cli/commands/demo-command.js';
import { IMPORT_HELP, importCommand } from './cli/commands/import-command.js';
import { KEYS_HELP, keysCommand } from './cli/commands/keys-command.js';
import { RECONCILE_HELP, reconcileCommand } from './cli/commands/reconcile-command.js';
import { RULES_HELP, rulesCommand } from './cli/commands/rules-command.js';
import { SERVE_HELP, serveCommand } from './cli/commands/serve-command.js';
import { USAGE_HELP, usageCommand } from './cli/commands/usage-command.js';
import { WORKER_HELP, workerCommand } from './cli/commands/worker-command.js';

const HELP = `tokenwatch — real-time LLM token-usage monitoring

Commands:
${[SERVE_HELP, WORKER_HELP, KEYS_HELP, RULES_HELP, USAGE_HELP, DEMO_HELP, IMPORT_HELP, RECONCILE_HELP, AWS_HELP].map((h) => h.split('\n')[0]).join('\n')}

Run \`tokenwatch <command> --help\` for details. Configuration: a JSON file (--config, or
<data-dir>/tokenwatch.json) and TOKENWATCH_* environment variables; see the README.`;

const COMMANDS: Record<string, (argv: string[], io: CliIo) => Promise<number>> = {
  serve: serveCommand,
  worker: workerCommand,
  keys: keysCommand,
  rules: rulesCommand,
  usage: usageCommand,
  demo: demoCommand,
  import: importCommand,
  reconcile: reconcileCommand,
  aws: awsCommand,
};

export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  if (!command || command === 'help' || command === '--help' || command === '-h') {
    io.stdout(`${HELP}\n`);
    return command ? 0 : 2;
  }
  if (command === '--version' || command === 'version') {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    io.stdout(`${pkg.version}\n`);
    return 0;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.stderr(`unknown command "${command}"\n\n${HELP}\n`);
    return 2;
  }
  try {
    return await run(rest, io);
  } catch (err) {
    if (err instanceof TokenwatchError) {
      io.stderr(`error: ${err.message}\n`);
      // Some messages already list their details (the config's): print each problem once.
      for (const d of err.details) {
        if (!err.message.includes(`${d.field}: ${d.reason}`))
          io.stderr(`  - ${d.field}: ${d.reason}\n`);
      }
      return err.code === 'invalid_config' || err.code === 'invalid_argument' ? 2 : 1;
    }
    if (
      err instanceof Error &&
      (err as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION'
    ) {
      io.stderr(`error: ${err.message}\n`);
      return 2;
    }
    io.stderr(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}

runCli(process.argv.slice(2), {
  env: process.env,
  stdout: (t) => process.stdout.write(t),
  stderr: (t) => process.stderr.write(t),
  stderrIsTTY: process.stderr.isTTY === true,
}).then(
  (code) => {
    process.exitCode = code;
    // A failed command ends now, whatever it left behind (a connection retrying, a timer): it
    // must not run on after printing its error.
    if (code !== 0) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`fatal: ${String(err)}\n`);
    process.exit(1);
  },
);
