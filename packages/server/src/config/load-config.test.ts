import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { TokenwatchError, type ValidationIssue } from '@tokenwatch/core';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from './load-config.js';

const root = mkdtempSync(join(tmpdir(), 'tokenwatch-load-config-'));
let n = 0;

afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

/** A fresh, empty data directory (no tokenwatch.json in it). */
function emptyDir(): string {
  const dir = join(root, `d${n++}`);
  mkdirSync(dir);
  return dir;
}

/** Writes a config file with this content (an object is JSON-encoded) and returns its path. */
function file(content: unknown, name = 'tokenwatch.json', dir = emptyDir()): string {
  const path = join(dir, name);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function failure(run: () => unknown): { error: TokenwatchError; issues: ValidationIssue[] } {
  try {
    run();
  } catch (error) {
    if (!(error instanceof TokenwatchError)) throw error;
    expect(error.code).toBe('invalid_config');
    return { error, issues: error.details };
  }
  throw new Error('expected loadConfig to throw');
}

describe('loadConfig: defaults', () => {
  it('applies every documented default', () => {
    const dir = emptyDir();
    const config = loadConfig({ env: { TOKENWATCH_DATA_DIR: dir } });
    expect(config).toMatchObject({
      dataDir: dir,
      server: { host: '127.0.0.1', port: 8787 },
      store: { driver: 'sqlite', synchronous: 'full', maxWalMiB: 64 },
      ingest: {
        maxBodyBytes: 1024 * 1024,
        flushMaxEvents: 5000,
        flushMaxWaitMs: 2,
        maxQueuedEvents: 100_000,
      },
      retention: { minuteDays: 7, dedupeDays: 36, historyDays: 90 },
      auth: { keyCacheSeconds: 5 },
      alerts: { sendTimeoutMs: 10_000, deliveryLeaseMs: 60_000, maxDeliveryAgeHours: 24 },
      log: { level: 'info' },
      configFile: undefined,
    });
    expect(config.server.publicUrl).toBeUndefined();
    expect(config.store.path).toBeUndefined();
  });

  it.skipIf(existsSync('.tokenwatch/tokenwatch.json'))(
    'uses .tokenwatch as the data directory when nothing is set',
    () => {
      const config = loadConfig({ env: {} });
      expect(config.dataDir).toBe('.tokenwatch');
      expect(config.configFile).toBeUndefined();
    },
  );

  it('fills the defaults of a section the file sets only partly', () => {
    const config = loadConfig({
      file: file({ ingest: { flushMaxEvents: 10 }, server: { port: 9000 } }),
      env: {},
    });
    expect(config.ingest).toMatchObject({
      flushMaxEvents: 10,
      flushMaxWaitMs: 2,
      maxQueuedEvents: 100_000,
      maxBodyBytes: 1024 * 1024,
    });
    expect(config.server).toMatchObject({ host: '127.0.0.1', port: 9000 });
  });
});

describe('loadConfig: sources and precedence', () => {
  it('finds <dataDir>/tokenwatch.json by itself and reports its absolute path', () => {
    const dir = emptyDir();
    const path = file({ server: { port: 1111 } }, 'tokenwatch.json', dir);
    const config = loadConfig({ env: { TOKENWATCH_DATA_DIR: dir } });
    expect(config.server.port).toBe(1111);
    expect(config.configFile).toBe(resolve(path));
  });

  it('finds the file in the data directory given as a command-line override', () => {
    const dir = emptyDir();
    file({ server: { port: 1212 } }, 'tokenwatch.json', dir);
    const config = loadConfig({ env: {}, overrides: [{ path: ['dataDir'], value: dir }] });
    expect(config.server.port).toBe(1212);
    expect(config.dataDir).toBe(dir);
  });

  it('reads an explicit file, from the option or from TOKENWATCH_CONFIG', () => {
    const path = file({ server: { port: 1313 } }, 'custom.json');
    expect(loadConfig({ file: path, env: {} }).server.port).toBe(1313);
    expect(loadConfig({ env: { TOKENWATCH_CONFIG: path } }).server.port).toBe(1313);
    expect(loadConfig({ env: { TOKENWATCH_CONFIG: path } }).configFile).toBe(resolve(path));
  });

  it('prefers the --config option over TOKENWATCH_CONFIG', () => {
    const a = file({ server: { port: 1001 } }, 'a.json');
    const b = file({ server: { port: 1002 } }, 'b.json');
    expect(loadConfig({ file: a, env: { TOKENWATCH_CONFIG: b } }).server.port).toBe(1001);
  });

  it('layers defaults < file < environment < command-line overrides', () => {
    const path = file({ server: { port: 1111, host: '0.0.0.0' }, log: { level: 'warn' } });
    const env = { TOKENWATCH_PORT: '2222', TOKENWATCH_LOG_LEVEL: 'error' };
    const overrides = [{ path: ['server', 'port'], value: 3333 }];

    expect(loadConfig({ file: path, env: {} }).server).toMatchObject({
      port: 1111,
      host: '0.0.0.0',
    });

    const fromEnv = loadConfig({ file: path, env });
    expect(fromEnv.server).toMatchObject({ port: 2222, host: '0.0.0.0' });
    expect(fromEnv.log.level).toBe('error');

    const fromFlags = loadConfig({ file: path, env, overrides });
    expect(fromFlags.server).toMatchObject({ port: 3333, host: '0.0.0.0' });
    expect(fromFlags.log.level).toBe('error');
  });

  it('maps every documented environment variable', () => {
    const dir = emptyDir();
    const config = loadConfig({
      env: {
        TOKENWATCH_DATA_DIR: dir,
        TOKENWATCH_HOST: '0.0.0.0',
        TOKENWATCH_PORT: '9999',
        TOKENWATCH_PUBLIC_URL: 'https://tokens.example.com',
        TOKENWATCH_SQLITE_PATH: '/var/lib/tw.db',
        TOKENWATCH_SQLITE_SYNCHRONOUS: 'normal',
        TOKENWATCH_FLUSH_MAX_EVENTS: '250',
        TOKENWATCH_FLUSH_MAX_WAIT_MS: '7.5',
        TOKENWATCH_MAX_QUEUED_EVENTS: '5000',
        TOKENWATCH_LOG_LEVEL: 'debug',
      },
    });
    expect(config).toMatchObject({
      dataDir: dir,
      server: { host: '0.0.0.0', port: 9999, publicUrl: 'https://tokens.example.com' },
      store: { path: '/var/lib/tw.db', synchronous: 'normal' },
      ingest: { flushMaxEvents: 250, flushMaxWaitMs: 7.5, maxQueuedEvents: 5000 },
      log: { level: 'debug' },
    });
  });

  it('ignores empty environment variables and undefined overrides', () => {
    const path = file({ server: { port: 1111 } });
    const config = loadConfig({
      file: path,
      env: { TOKENWATCH_PORT: '', TOKENWATCH_HOST: '' },
      overrides: [{ path: ['server', 'port'], value: undefined }],
    });
    expect(config.server).toMatchObject({ port: 1111, host: '127.0.0.1' });
  });

  it('ignores environment variables it does not know', () => {
    const config = loadConfig({
      env: { TOKENWATCH_DATA_DIR: emptyDir(), TOKENWATCH_COLOUR: 'blue', PATH: '/bin' },
    });
    expect(config.server.port).toBe(8787);
  });
});

describe('loadConfig: errors', () => {
  it('refuses a non-numeric number variable, naming the variable', () => {
    const { issues } = failure(() =>
      loadConfig({ env: { TOKENWATCH_DATA_DIR: emptyDir(), TOKENWATCH_PORT: 'eighty' } }),
    );
    expect(issues).toEqual([
      { field: 'TOKENWATCH_PORT', reason: 'must be a number, got "eighty"' },
    ]);
  });

  it('refuses a blank (whitespace) number variable rather than reading it as 0', () => {
    // Number(' ') is 0: TOKENWATCH_PORT=" " would silently mean "any free port".
    const { issues } = failure(() =>
      loadConfig({ env: { TOKENWATCH_DATA_DIR: emptyDir(), TOKENWATCH_PORT: ' ' } }),
    );
    expect(issues.map((i) => i.field)).toEqual(['TOKENWATCH_PORT']);
  });

  it('names the variable and the config path when an environment value is out of range', () => {
    const { issues } = failure(() =>
      loadConfig({ env: { TOKENWATCH_DATA_DIR: emptyDir(), TOKENWATCH_PORT: '70000' } }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('TOKENWATCH_PORT (server.port)');
    expect(issues[0]?.reason).toMatch(/65535/);
  });

  it('names the config path when the file has the bad value', () => {
    const { issues } = failure(() => loadConfig({ file: file({ server: { port: -1 } }), env: {} }));
    expect(issues.map((i) => i.field)).toEqual(['server.port']);
  });

  it('lists ALL problems at once: a bad port in the environment AND an unknown key in the file', () => {
    const path = file({ colour: 'blue', server: { prot: 80 }, ingest: { flushMaxEvents: 0 } });
    const { error, issues } = failure(() =>
      loadConfig({ file: path, env: { TOKENWATCH_PORT: 'eighty', TOKENWATCH_LOG_LEVEL: 'loud' } }),
    );
    const fields = issues.map((i) => i.field);
    expect(fields).toContain('TOKENWATCH_PORT');
    expect(fields).toContain('TOKENWATCH_LOG_LEVEL (log.level)');
    expect(fields).toContain('ingest.flushMaxEvents');
    // An unknown key is named itself, not its section.
    expect(issues).toContainEqual({ field: 'colour', reason: 'unknown key' });
    expect(issues).toContainEqual({ field: 'server.prot', reason: 'unknown key' });
    expect(issues).toHaveLength(5);
    // The message lists them too, one per line, for the terminal.
    for (const i of issues) expect(error.message).toContain(`  - ${i.field}: ${i.reason}`);
    expect(error.message.startsWith('Invalid configuration:\n')).toBe(true);
  });

  it('lists a range error from the environment together with an unknown key in the file', () => {
    const { issues } = failure(() =>
      loadConfig({ file: file({ colour: 'blue' }), env: { TOKENWATCH_PORT: '70000' } }),
    );
    expect(issues.map((i) => i.field).sort()).toEqual(['TOKENWATCH_PORT (server.port)', 'colour']);
  });

  it.each([
    ['a sub-key', { retention: { minuteDayz: 3 } }, 'retention.minuteDayz'],
    ['a section', { metrics: {} }, 'metrics'],
    ['a key next to a valid one', { log: { level: 'info', format: 'json' } }, 'log.format'],
  ])('refuses an unknown key: %s', (_what, content, field) => {
    const { issues } = failure(() => loadConfig({ file: file(content), env: {} }));
    expect(issues.map((i) => i.field)).toEqual([field]);
  });

  it('refuses "__proto__" in the file as an unknown key and takes nothing from it', () => {
    const path = file('{"__proto__": {"log": {"level": "debug"}, "server": {"port": 1234}}}');
    const { issues } = failure(() => loadConfig({ file: path, env: {} }));
    expect(issues.some((i) => i.reason.includes('__proto__'))).toBe(true);
    expect(({} as Record<string, unknown>).log).toBeUndefined();
  });

  it('refuses values of the wrong type, each with its path', () => {
    const { issues } = failure(() =>
      loadConfig({
        file: file({
          dataDir: '',
          server: { host: 5, publicUrl: 'not a url' },
          // postgres is a valid store driver since the scale-out issue; kafka is no queue driver.
          store: { driver: 'sqlite', synchronous: 'sometimes', maxWalMiB: 0 },
          queue: { driver: 'kafka' },
          ingest: { maxBodyBytes: 10, flushMaxWaitMs: 5000, maxQueuedEvents: 1.5 },
          retention: { minuteDays: 0, dedupeDays: 35, historyDays: 30 },
          auth: { keyCacheSeconds: -1 },
          alerts: { deliveryLeaseMs: 500 },
        }),
        env: {},
      }),
    );
    expect(issues.map((i) => i.field).sort()).toEqual(
      [
        'dataDir',
        'server.host',
        'server.publicUrl',
        'queue.driver',
        'store.synchronous',
        'store.maxWalMiB',
        'ingest.maxBodyBytes',
        'ingest.flushMaxWaitMs',
        'ingest.maxQueuedEvents',
        'retention.minuteDays',
        'retention.dedupeDays',
        'retention.historyDays',
        'auth.keyCacheSeconds',
        'alerts.deliveryLeaseMs',
      ].sort(),
    );
  });

  it('keeps dedupe retention longer than the 35 days of accepted lateness', () => {
    expect(
      loadConfig({ file: file({ retention: { dedupeDays: 36 } }), env: {} }).retention.dedupeDays,
    ).toBe(36);
    failure(() => loadConfig({ file: file({ retention: { dedupeDays: 35 } }), env: {} }));
  });

  it('reports an explicit file that does not exist', () => {
    const missing = join(emptyDir(), 'nope.json');
    const { issues } = failure(() => loadConfig({ file: missing, env: {} }));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe(resolve(missing));
    expect(issues[0]?.reason).toMatch(/^cannot be read: .*ENOENT/);
  });

  it('reports a file that cannot be read (a directory)', () => {
    const dir = emptyDir();
    const { issues } = failure(() => loadConfig({ file: dir, env: {} }));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe(resolve(dir));
    expect(issues[0]?.reason).toMatch(/^cannot be read: .*EISDIR/);
  });

  it('reports a file that is not JSON', () => {
    const path = file('{ "server": { port: 80 } }');
    const { issues } = failure(() => loadConfig({ file: path, env: {} }));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe(resolve(path));
    expect(issues[0]?.reason).toMatch(/^cannot be read: /);
  });

  it.each([['[]'], ['"text"'], ['42'], ['null']])(
    'reports a file holding %s instead of an object',
    (json) => {
      const path = file(json);
      const { issues } = failure(() => loadConfig({ file: path, env: {} }));
      expect(issues).toEqual([{ field: resolve(path), reason: 'must contain a JSON object' }]);
    },
  );

  it('reports an unreadable file together with the environment problems', () => {
    const missing = join(emptyDir(), 'nope.json');
    const { issues } = failure(() =>
      loadConfig({
        file: missing,
        env: { TOKENWATCH_PORT: 'x', TOKENWATCH_SQLITE_SYNCHRONOUS: 'off' },
      }),
    );
    expect(issues.map((i) => i.field)).toEqual([
      resolve(missing),
      'TOKENWATCH_PORT',
      'TOKENWATCH_SQLITE_SYNCHRONOUS (store.synchronous)',
    ]);
  });

  it('refuses a bad command-line override', () => {
    const { issues } = failure(() =>
      loadConfig({
        env: { TOKENWATCH_DATA_DIR: emptyDir() },
        overrides: [{ path: ['server', 'port'], value: 'http' }],
      }),
    );
    expect(issues.map((i) => i.field)).toEqual(['server.port']);
  });
});

describe('loadConfig: otlp', () => {
  it('defaults: 16 MiB, the documented user attributes, no tags', () => {
    const config = loadConfig({ env: { TOKENWATCH_DATA_DIR: emptyDir() } });
    expect(config.otlp).toEqual({
      maxBodyBytes: 16 * 1024 * 1024,
      userAttributes: [
        'user.id',
        'enduser.id',
        'gen_ai.user.id',
        'ai.telemetry.metadata.userId',
        'traceloop.association.properties.user_id',
        'session.id',
      ],
      defaultUserId: 'anonymous',
      tagAttributes: [],
    });
  });

  it('takes user attributes, tag attributes (named or renamed) and the body limit from file and env', () => {
    const config = loadConfig({
      file: file({
        otlp: {
          userAttributes: ['ai.telemetry.metadata.userId'],
          tagAttributes: [
            'deployment.environment',
            { attribute: 'ai.telemetry.metadata.team', tag: 'team' },
          ],
        },
      }),
      env: { TOKENWATCH_OTLP_MAX_BODY_BYTES: '2097152' },
    });
    expect(config.otlp.userAttributes).toEqual(['ai.telemetry.metadata.userId']);
    expect(config.otlp.tagAttributes).toEqual([
      'deployment.environment',
      { attribute: 'ai.telemetry.metadata.team', tag: 'team' },
    ]);
    expect(config.otlp.maxBodyBytes).toBe(2_097_152);
  });

  it('refuses a tag key the event contract would refuse, and an empty user list', () => {
    const { issues } = failure(() =>
      loadConfig({
        file: file({ otlp: { tagAttributes: ['has space'], userAttributes: [] } }),
        env: {},
      }),
    );
    const fields = issues.map((i) => i.field);
    expect(fields).toContain('otlp.tagAttributes.0');
    expect(fields).toContain('otlp.userAttributes');
  });
});

describe('loadConfig: one clear error per problem, naming the real field', () => {
  it('a --store URL no driver takes is reported once, at store.url, with the accepted schemes', () => {
    const { error, issues } = failure(() =>
      loadConfig({ env: {}, overrides: [{ path: ['store', 'url'], value: 'mysql://x' }] }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('store.url');
    expect(issues[0]?.reason).toContain('unsupported scheme "mysql://"');
    expect(issues[0]?.reason).toContain('postgres://');
    expect(error.message).not.toContain('Unrecognized key');
    expect(error.message.match(/store\.url/g)).toHaveLength(1);
  });

  it('names the environment variable when the store URL came from it', () => {
    const { issues } = failure(() =>
      loadConfig({ env: { TOKENWATCH_STORE_URL: 'localhost:5432' } }),
    );
    expect(issues).toHaveLength(1);
    expect(issues[0]?.field).toBe('TOKENWATCH_STORE_URL (store.url)');
    expect(issues[0]?.reason).toContain('not a URL');
  });

  it('a --queue URL no driver takes is reported at queue.url', () => {
    const { issues } = failure(() =>
      loadConfig({ env: {}, overrides: [{ path: ['queue', 'url'], value: 'kafka://b:9092' }] }),
    );
    expect(issues).toEqual([
      {
        field: 'queue.url',
        reason: expect.stringContaining(
          'unsupported scheme "kafka://"; expected nats:// or tls://',
        ),
      },
    ]);
  });

  it('an unknown driver lists the accepted drivers and the one given', () => {
    const { issues } = failure(() =>
      loadConfig({ file: file({ store: { driver: 'mysql', url: 'mysql://x' } }), env: {} }),
    );
    expect(issues).toEqual([
      { field: 'store.driver', reason: 'must be one of "sqlite", "postgres", got "mysql"' },
    ]);
  });

  it('several unknown keys in one section are one problem each, each named', () => {
    const { issues } = failure(() =>
      loadConfig({ file: file({ server: { bogus: 1, other: 2 } }), env: {} }),
    );
    expect(issues.map((i) => i.field)).toEqual(['server.bogus', 'server.other']);
  });

  it('a tag attribute of neither form names its index and the closest form', () => {
    const { issues } = failure(() =>
      loadConfig({
        file: file({ otlp: { tagAttributes: [123, { attribute: 'x' }, 'ok'] } }),
        env: {},
      }),
    );
    expect(issues).toEqual([
      { field: 'otlp.tagAttributes.0', reason: 'must be a string or a object, got number 123' },
      { field: 'otlp.tagAttributes.1.tag', reason: expect.stringContaining('expected string') },
    ]);
  });
});
