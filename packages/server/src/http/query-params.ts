import {
  parseTimestamp,
  TIMESTAMP_REASON,
  TokenwatchError,
  type ValidationIssue,
} from '@tokenwatch/core';

/** How one query parameter is read. Every parameter is single-valued unless `repeatable`. */
export type ParamRule =
  | { type: 'integer'; min: number; max: number }
  | { type: 'enum'; values: readonly string[] }
  /** Epoch ms, an RFC 3339 date-time with zone, or a YYYY-MM-DD date (UTC). */
  | { type: 'timestamp' }
  | { type: 'boolean' }
  | { type: 'string'; maxLength: number; repeatable?: boolean };

/**
 * The query parameters a route takes. Checked by the router before the route runs: an unknown,
 * repeated or malformed parameter is a 400 `invalid_query` naming each one and why, so no value
 * ever reaches a store unchecked (a `limit=1.5` once reached SQLite and came back as a 500).
 */
export interface QuerySpec {
  params: Readonly<Record<string, ParamRule>>;
  /**
   * Parameter names the route validates itself (usage filters such as `tag.<key>`): accepted
   * here and left to the route's own parser, which must refuse the bad ones with a 400 too.
   */
  dynamic?: RegExp;
}

/** A route that reads no query parameters at all (any given is refused). */
export const NO_QUERY: QuerySpec = { params: {} };

/** A route that takes any query and reads none of it (static files: cache busters, view state). */
export const ANY_QUERY: QuerySpec = { params: {}, dynamic: /^/ };

/** Longest parameter name echoed back in an error. */
const NAME_ECHO = 64;
/** Most parameters one request may carry; more is an attack or a bug, not a query. */
const MAX_PARAMS = 200;

/** `limit` of list endpoints: an integer within [1, max]. */
export function limitRule(max: number): ParamRule {
  return { type: 'integer', min: 1, max };
}

function checkValue(rule: ParamRule, value: string): string | undefined {
  switch (rule.type) {
    case 'integer': {
      const range = `must be an integer from ${rule.min} to ${rule.max}`;
      if (!/^-?\d{1,16}$/.test(value)) return range;
      const n = Number(value);
      return n < rule.min || n > rule.max ? range : undefined;
    }
    case 'enum': {
      if (rule.values.includes(value)) return undefined;
      const shown = rule.values.filter((v) => v !== '');
      return shown.length === 2
        ? `must be ${shown[0]} or ${shown[1]}`
        : `must be one of ${shown.join(', ')}`;
    }
    case 'timestamp':
      return parseTimestamp(value) === undefined ? TIMESTAMP_REASON : undefined;
    case 'boolean':
      return value === 'true' || value === 'false' ? undefined : 'must be true or false';
    case 'string':
      if (value.length === 0) return 'must not be empty';
      return value.length > rule.maxLength
        ? `must be at most ${rule.maxLength} characters`
        : undefined;
  }
}

/**
 * Validates `params` against `spec`; throws one `invalid_query` listing every problem.
 * Returns typed accessors over the (now valid) values.
 */
export function parseQuery(params: URLSearchParams, spec: QuerySpec): QueryValues {
  const issues: ValidationIssue[] = [];
  const names = [...new Set(params.keys())];
  if (names.length > MAX_PARAMS) {
    issues.push({ field: '(query)', reason: `at most ${MAX_PARAMS} distinct parameters` });
  }
  for (const name of names.slice(0, MAX_PARAMS)) {
    const field = name.slice(0, NAME_ECHO);
    const rule = Object.hasOwn(spec.params, name) ? spec.params[name] : undefined;
    if (!rule) {
      if (!spec.dynamic?.test(name))
        issues.push({ field, reason: 'is not a known query parameter' });
      continue;
    }
    const values = params.getAll(name);
    if (values.length > 1 && !(rule.type === 'string' && rule.repeatable)) {
      issues.push({ field, reason: 'must be given once' });
      continue;
    }
    for (const value of values) {
      const reason = checkValue(rule, value);
      if (reason) {
        issues.push({ field, reason });
        break;
      }
    }
  }
  if (issues.length > 0) {
    throw new TokenwatchError(
      'invalid_query',
      `Invalid query parameter${issues.length > 1 ? 's' : ''}: ${issues
        .slice(0, 5)
        .map((i) => `${i.field} ${i.reason}`)
        .join('; ')}.`,
      { details: issues },
    );
  }
  return new QueryValues(params);
}

/** Values of a query that passed `parseQuery`; the accessors only convert. */
export class QueryValues {
  constructor(readonly params: URLSearchParams) {}

  string(name: string): string | undefined {
    return this.params.get(name) ?? undefined;
  }

  integer(name: string): number | undefined {
    const v = this.params.get(name);
    return v === null ? undefined : Number(v);
  }

  timestamp(name: string): number | undefined {
    const v = this.params.get(name);
    return v === null ? undefined : parseTimestamp(v);
  }

  boolean(name: string): boolean | undefined {
    const v = this.params.get(name);
    return v === null ? undefined : v === 'true';
  }
}
