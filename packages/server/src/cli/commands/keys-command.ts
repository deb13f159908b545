import { parseArgs } from 'node:util';
import { type KeyRole, TokenwatchError } from '@tokenwatch/core';
import { openStore } from '../../adapters/store/open-store.js';
import { createProjectKey, DEFAULT_PROJECT_ID } from '../../bootstrap.js';
import { type CliIo, COMMON_OPTIONS, configFromFlags } from '../cli-context.js';

export const KEYS_HELP = `tokenwatch keys create --role ingest|admin|read [--app A] [--name N] [--project P] [--data-dir D]
tokenwatch keys list [--project P] [--data-dir D]
tokenwatch keys revoke KEY_ID [--project P] [--data-dir D]

create prints the new key as the LAST line of stdout (shown once; only its hash is stored).
--app binds an ingest key to one appId. --project defaults to "default" and is created if missing.`;

const ROLES: readonly KeyRole[] = ['ingest', 'admin', 'read'];

export async function keysCommand(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...COMMON_OPTIONS,
      role: { type: 'string' },
      app: { type: 'string' },
      name: { type: 'string' },
      project: { type: 'string' },
      json: { type: 'boolean' },
    },
  });
  const [action, ...rest] = positionals;
  if (values.help || !action) {
    io.stdout(`${KEYS_HELP}\n`);
    return values.help ? 0 : 2;
  }
  const config = configFromFlags(values, io);
  const store = await openStore(config, { thread: 'main' });
  try {
    await store.migrate();
    const projectId = values.project ?? DEFAULT_PROJECT_ID;
    switch (action) {
      case 'create': {
        const role = values.role as KeyRole | undefined;
        if (!role || !ROLES.includes(role)) {
          throw new TokenwatchError(
            'invalid_argument',
            `--role must be one of ${ROLES.join(', ')}`,
          );
        }
        if (values.app !== undefined && role !== 'ingest') {
          throw new TokenwatchError('invalid_argument', '--app binds ingest keys only');
        }
        const created = await createProjectKey(store, {
          projectId,
          role,
          appId: values.app,
          name: values.name,
          nowMs: Date.now(),
        });
        if (created.projectCreated) io.stderr(`created project "${projectId}"\n`);
        io.stdout(
          `key id: ${created.id}\nproject: ${projectId}\nrole: ${role}${values.app ? `\napp: ${values.app}` : ''}\n`,
        );
        io.stdout(`${created.key}\n`);
        return 0;
      }
      case 'list': {
        const keys = await store.listKeys(projectId);
        if (values.json) {
          io.stdout(
            `${JSON.stringify(
              keys.map(({ hash: _hash, ...k }) => k),
              null,
              2,
            )}\n`,
          );
          return 0;
        }
        for (const k of keys) {
          io.stdout(
            `${k.id}  ${k.prefix}…  ${k.role.padEnd(6)}  ${k.appId ? `app=${k.appId}  ` : ''}${k.name ?? ''}${k.revokedAtMs ? '  REVOKED' : ''}\n`,
          );
        }
        if (keys.length === 0) io.stdout(`no keys in project "${projectId}"\n`);
        return 0;
      }
      case 'revoke': {
        const id = rest[0];
        if (!id) throw new TokenwatchError('invalid_argument', 'keys revoke needs a KEY_ID');
        const ok = await store.revokeKey(projectId, id, Date.now());
        if (!ok) throw new TokenwatchError('not_found', `no key "${id}" in project "${projectId}"`);
        io.stdout(`revoked ${id} (running servers stop accepting it within a few seconds)\n`);
        return 0;
      }
      default:
        throw new TokenwatchError(
          'invalid_argument',
          `unknown keys action "${action}"\n${KEYS_HELP}`,
        );
    }
  } finally {
    await store.close();
  }
}
