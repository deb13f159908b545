import type { ValidationIssue } from '../errors.js';

// The field checks of rule input (`parseRuleInput`, `parse-channel.ts`): each reports a problem
// as a ValidationIssue naming the field and the reason, and returns undefined for a bad value.

// biome-ignore lint/suspicious/noControlCharactersInRegex: the point is to find them
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
const HTTP_URL = /^(https?):\/\/([^/?#\s]+)([/?#][^\s]*)?$/i;
const HOST_PORT = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~%!$&'()*+,;=-]+)(?::(\d{1,5}))?$/;

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return 'a string';
  if (typeof value === 'number') return `${value}`;
  return `a ${typeof value}`;
}

/** A value for a message: strings quoted, anything else described (never throws). */
export function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : describe(value);
}

export function has(obj: Record<string, unknown>, key: string): boolean {
  return Object.hasOwn(obj, key);
}

export class Issues {
  readonly list: ValidationIssue[] = [];
  constructor(private readonly prefix: string) {}

  path(field: string): string {
    if (this.prefix === '') return field;
    if (field === '') return this.prefix;
    return field.startsWith('[') ? `${this.prefix}${field}` : `${this.prefix}.${field}`;
  }

  add(field: string, reason: string): void {
    this.list.push({ field: this.path(field), reason });
  }

  /** Reports keys outside `allowed` (and any `__proto__`) of the object at `at`. */
  unknownKeys(obj: Record<string, unknown>, at: string, allowed: readonly string[]): void {
    for (const key of Object.keys(obj)) {
      if (allowed.includes(key)) continue;
      const field = at === '' ? key : `${at}.${key}`;
      if (key === '__proto__' || key === 'constructor' || key === 'prototype') {
        this.add(field, 'is not allowed');
      } else {
        this.add(field, `is not a known field (known: ${allowed.join(', ')})`);
      }
    }
  }
}

export function checkString(
  value: unknown,
  field: string,
  issues: Issues,
  maxLength: number,
): string | undefined {
  if (typeof value !== 'string') {
    issues.add(field, `must be a string, got ${describe(value)}`);
    return undefined;
  }
  if (value.trim().length === 0) {
    issues.add(field, 'must not be empty or blank');
    return undefined;
  }
  if (value.length > maxLength) {
    issues.add(field, `must be at most ${maxLength} characters, got ${value.length}`);
    return undefined;
  }
  if (CONTROL_CHARS.test(value)) {
    issues.add(field, 'must not contain control characters');
    return undefined;
  }
  return value;
}

export function checkBoolean(value: unknown, field: string, issues: Issues): boolean | undefined {
  if (typeof value !== 'boolean') {
    issues.add(field, `must be true or false, got ${describe(value)}`);
    return undefined;
  }
  return value;
}

export function checkPositive(value: unknown, field: string, issues: Issues): number | undefined {
  if (typeof value !== 'number' || !Number.isFinite(value)) {
    issues.add(field, `must be a finite number, got ${describe(value)}`);
    return undefined;
  }
  if (value <= 0) {
    issues.add(field, `must be greater than 0, got ${value}`);
    return undefined;
  }
  return value;
}

export function checkEnum<T extends string>(
  value: unknown,
  field: string,
  allowed: readonly T[],
  issues: Issues,
): T | undefined {
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value))
    return value as T;
  issues.add(field, `must be one of ${allowed.join(', ')}, got ${show(value)}`);
  return undefined;
}

/** True for an absolute http(s) URL with a host, no whitespace or control characters. */
export function checkUrl(
  value: unknown,
  field: string,
  issues: Issues,
  maxLength: number,
): string | undefined {
  const url = checkString(value, field, issues, maxLength);
  if (url === undefined) return undefined;
  const m = HTTP_URL.exec(url);
  if (m === null) {
    issues.add(field, 'must be an absolute http:// or https:// URL');
    return undefined;
  }
  const authority = m[2] ?? '';
  const at = authority.lastIndexOf('@');
  const hostPort = at >= 0 ? authority.slice(at + 1) : authority;
  const hp = HOST_PORT.exec(hostPort);
  if (hp === null || hostPort.startsWith(':')) {
    issues.add(field, 'must name a valid host');
    return undefined;
  }
  if (hp[1] !== undefined && Number(hp[1]) > 65_535) {
    issues.add(field, `port must be at most 65535, got ${hp[1]}`);
    return undefined;
  }
  return url;
}

/** An error message listing the first issues. */
export function summary(title: string, issues: ValidationIssue[]): string {
  const shown = issues.slice(0, 5).map((i) => `${i.field || '(rule)'} ${i.reason}`);
  const more = issues.length > 5 ? `; and ${issues.length - 5} more` : '';
  return `${title}: ${shown.join('; ')}${more}`;
}
