import { TokenwatchError } from '@tokenwatch/core';

/** The `options` of a connection: its schema first, then each setting (checked: no injection). */
export function connectionOptions(
  schema: string,
  settings: Readonly<Record<string, string>>,
): string {
  const parts = [`-c search_path=${schema}`];
  for (const [name, value] of Object.entries(settings)) {
    if (!/^[a-z_][a-z0-9_.]*$/.test(name) || !/^[A-Za-z0-9_.:-]+$/.test(value)) {
      throw new TokenwatchError(
        'invalid_config',
        `invalid PostgreSQL session setting "${name}=${value}" (a setting name and a plain value)`,
      );
    }
    parts.push(`-c ${name}=${value}`);
  }
  return parts.join(' ');
}
