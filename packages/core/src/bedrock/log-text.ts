/**
 * Splits the text of an invocation-log file or payload into records, whatever the shipper made
 * of it: S3's JSON lines, a pretty-printed export (several objects one after the other), a JSON
 * array, CloudWatch Logs' export lines (`<timestamp> <json>`), `aws logs filter-log-events`
 * output (`{"events":[{"message":"<json>"}]}`), a decoded `awslogs` subscription payload
 * (`{"logEvents":[…]}`) and `{"records":[…]}`. Pure and total: bad parts become problems with a
 * line number, never a throw, and never hide the good records around them.
 */

export interface LogTextProblem {
  /** 1-based line where the unusable part starts. */
  line: number;
  reason: string;
}

export interface LogText {
  records: unknown[];
  problems: LogTextProblem[];
}

/** Where a JSON value that starts at `start` ends (exclusive), or -1 if the text ends first. */
function valueEnd(text: string, start: number): number {
  let depth = 0;
  let inString = false;
  for (let i = start; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) depth++;
    else if (c === 125 /* } */ || c === 93 /* ] */) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A CloudWatch Logs export line starts with its ingestion timestamp: `2025-03-11T00:38:02.123Z `. */
const EXPORT_PREFIX = /^\d{4}-\d{2}-\d{2}T[\d:.]+Z?\s+$/;

/**
 * Unwraps containers into their records. A log event's `message` is the record as a string.
 */
function unwrap(value: unknown, line: number, out: LogText): void {
  if (Array.isArray(value)) {
    for (const item of value) unwrap(item, line, out);
    return;
  }
  if (isObject(value)) {
    const inner = Array.isArray(value.logEvents)
      ? value.logEvents
      : Array.isArray(value.events) && value.schemaType === undefined
        ? value.events
        : Array.isArray(value.records) && value.schemaType === undefined
          ? value.records
          : undefined;
    if (inner !== undefined) {
      for (const item of inner) {
        if (isObject(item) && typeof item.message === 'string') {
          try {
            out.records.push(JSON.parse(item.message));
          } catch {
            out.problems.push({ line, reason: 'a log event message is not JSON' });
          }
        } else {
          out.records.push(item);
        }
      }
      return;
    }
  }
  out.records.push(value);
}

export function splitLogText(text: string): LogText {
  const out: LogText = { records: [], problems: [] };
  let line = 1;
  let i = 0;
  const advanceTo = (to: number) => {
    for (let k = i; k < to; k++) if (text.charCodeAt(k) === 10) line++;
    i = to;
  };
  // A UTF-8 byte-order mark is not part of the JSON.
  if (text.charCodeAt(0) === 0xfeff) i = 1;
  while (i < text.length) {
    const c = text[i] as string;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      advanceTo(i + 1);
      continue;
    }
    if (c === '{' || c === '[') {
      const end = valueEnd(text, i);
      if (end < 0) {
        out.problems.push({ line, reason: 'the JSON is truncated (the text ends inside it)' });
        break;
      }
      let value: unknown;
      let parsed = true;
      try {
        value = JSON.parse(text.slice(i, end));
      } catch (err) {
        parsed = false;
        out.problems.push({ line, reason: `not valid JSON: ${(err as Error).message}` });
      }
      if (parsed) unwrap(value, line, out);
      advanceTo(end);
      continue;
    }
    // Not the start of a JSON value: a CloudWatch export line's timestamp, or garbage.
    const eol = text.indexOf('\n', i);
    const lineEnd = eol < 0 ? text.length : eol;
    const brace = text.indexOf('{', i);
    if (brace >= 0 && brace < lineEnd && EXPORT_PREFIX.test(text.slice(i, brace))) {
      advanceTo(brace);
      continue;
    }
    out.problems.push({ line, reason: 'not JSON (expected a record object)' });
    advanceTo(lineEnd);
  }
  return out;
}
