import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { compileRule, counterKeyOf, TokenwatchError, windowFor } from '@tokenwatch/core';
import { openStore } from '../../adapters/store/open-store.js';
import { RuleService } from '../../alerts/rule-service.js';
import { ruleStatus } from '../../alerts/rule-status.js';
import { DEFAULT_PROJECT_ID } from '../../bootstrap.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';

export const RULES_HELP = `tokenwatch rules list [--project P] [--format json]
tokenwatch rules create (--file RULE.json | --json '{...}') [--project P]
tokenwatch rules update RULE_ID (--file RULE.json | --json '{...}') [--project P]
tokenwatch rules enable|disable|delete|status RULE_ID [--project P]

Rules are JSON (see README § Rules). A running server picks changes up within 5 seconds.
Example, the seed's rule (10,000 tokens per user × model per hour, to a webhook):
  tokenwatch rules create --json '{"name":"seed","scope":["user","model"],"metric":"totalTokens","window":{"type":"calendar","unit":"hour","timeZone":"UTC"},"levels":[{"value":10000}],"channels":[{"type":"webhook","url":"https://example.com/hook"}]}'`;

export async function rulesCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...COMMON_OPTIONS,
      project: { type: 'string' },
      file: { type: 'string' },
      json: { type: 'string' },
      format: { type: 'string' },
    },
  });
  const [action, id] = positionals;
  if (values.help || !action) {
    io.stdout(`${RULES_HELP}\n`);
    return values.help ? 0 : 2;
  }
  const definition = (): unknown => {
    const text = values.file !== undefined ? readFileSync(values.file, 'utf8') : values.json;
    if (text === undefined)
      throw new TokenwatchError('invalid_argument', 'give the rule with --file or --json');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw new TokenwatchError(
        'invalid_argument',
        `the rule is not valid JSON: ${(err as Error).message}`,
      );
    }
  };
  const needId = () => {
    if (!id) throw new TokenwatchError('invalid_argument', `rules ${action} needs a RULE_ID`);
    return id;
  };
  const config = configFromFlags(values, io);
  const store = await openStore(config, { thread: 'main' });
  try {
    await store.migrate();
    const projectId = values.project ?? DEFAULT_PROJECT_ID;
    const service = new RuleService(store, {
      allowPrivateNetworks: config.alerts.allowPrivateNetworks,
    });
    const print = (value: unknown) => io.stdout(`${JSON.stringify(value, null, 2)}\n`);
    switch (action) {
      case 'list': {
        const rules = await store.listRules(projectId);
        if (values.format === 'json' || rules.length === 0) {
          if (rules.length === 0) io.stdout(`no rules in project "${projectId}"\n`);
          else print(rules);
          return 0;
        }
        for (const r of rules) {
          const win =
            r.window.type === 'calendar'
              ? `per ${r.window.unit} (${r.window.timeZone})`
              : `rolling ${r.window.minutes} min`;
          io.stdout(
            `${r.id}  ${r.enabled ? 'on ' : 'off'}  ${r.name}: ${r.metric} ${win} by [${r.scope.join(' × ') || 'project'}] levels ${JSON.stringify(r.levels)}${r.enforce ? ' ENFORCED' : ''}\n`,
          );
        }
        return 0;
      }
      case 'create':
        print(await service.create(projectId, definition()));
        return 0;
      case 'update':
        print(await service.update(projectId, needId(), definition()));
        return 0;
      case 'enable':
      case 'disable':
        print(await service.setEnabled(projectId, needId(), action === 'enable'));
        return 0;
      case 'delete':
        await service.delete(projectId, needId());
        io.stdout(`deleted ${id}\n`);
        return 0;
      case 'status': {
        const rule = await store.getRule(projectId, needId());
        if (!rule)
          throw new TokenwatchError('not_found', `no rule "${id}" in project "${projectId}"`);
        const nowMs = Date.now();
        const win = windowFor(nowMs, rule.window);
        print(
          ruleStatus(
            compileRule(rule),
            await store.readCounters(counterKeyOf(rule), win.startMs, win.endMs),
            nowMs,
          ),
        );
        return 0;
      }
      default:
        throw new TokenwatchError(
          'invalid_argument',
          `unknown rules action "${action}"\n${RULES_HELP}`,
        );
    }
  } finally {
    await store.close();
  }
}
