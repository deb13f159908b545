import type { z } from 'zod';

/** One configuration problem: the config path of the field at fault and what is wrong with it. */
export interface ConfigProblem {
  path: string[];
  reason: string;
}

type Issue = z.core.$ZodIssue;

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string')
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let node = root;
  for (const key of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<PropertyKey, unknown>)[key];
  }
  return node;
}

/**
 * The branch of a failed union the input came closest to matching: the one whose problems sit
 * deepest (it got past the type check), so `{ attribute: "x" }` is told its `tag` is missing
 * rather than that it is not a string.
 */
function closestBranch(branches: readonly (readonly Issue[])[]): readonly Issue[] | undefined {
  let best: readonly Issue[] | undefined;
  let bestDepth = -1;
  for (const issues of branches) {
    const depth = Math.max(...issues.map((i) => i.path.length));
    if (depth > bestDepth) {
      best = issues;
      bestDepth = depth;
    }
  }
  return bestDepth > 0 ? best : undefined;
}

/**
 * Turns zod's issues into one problem per field, each naming the real field: an unknown key is
 * reported at `section.key` (not at its section), a bad union discriminator lists the accepted
 * values and the one given, and a union that failed in every branch reports the branch the input
 * nearly matched (or every type it could have been). Identical problems are reported once.
 */
export function describeConfigIssues(issues: readonly Issue[], input: unknown): ConfigProblem[] {
  const out: ConfigProblem[] = [];
  const seen = new Set<string>();
  const add = (path: string[], reason: string): void => {
    const key = `${path.join('.')}\u0000${reason}`;
    if (seen.has(key)) return;
    seen.add(key);
    out.push({ path, reason });
  };
  const visit = (issue: Issue, prefix: readonly PropertyKey[]): void => {
    const full = [...prefix, ...issue.path];
    const path = full.map(String);
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) add([...path, key], 'unknown key');
        return;
      case 'invalid_union': {
        const given = valueAt(input, full);
        if (issue.errors.length === 0) {
          const options = ((issue as { options?: unknown[] }).options ?? []).filter(
            (o) => o !== undefined && o !== null,
          );
          const accepted = options.map((o) => JSON.stringify(o)).join(', ');
          add(
            path,
            given === undefined
              ? `required: one of ${accepted}`
              : `must be one of ${accepted}, got ${describeValue(given)}`,
          );
          return;
        }
        const branch = closestBranch(issue.errors);
        if (branch) {
          for (const inner of branch) visit(inner, full);
          return;
        }
        const expected = [
          ...new Set(
            issue.errors.flatMap((b) =>
              b.map((i) => (i.code === 'invalid_type' ? i.expected : undefined)),
            ),
          ),
        ].filter((e) => e !== undefined);
        add(
          path,
          expected.length > 0
            ? `must be a ${expected.join(' or a ')}, got ${describeValue(given)}`
            : issue.message,
        );
        return;
      }
      default:
        add(path, issue.message);
    }
  };
  for (const issue of issues) visit(issue, []);
  return out;
}
