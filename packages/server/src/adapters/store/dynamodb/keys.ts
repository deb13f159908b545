/**
 * The single-table layout of the DynamoDB store: every item's partition key (`pk`) and sort key
 * (`sk`), and the two global secondary indexes. deploy/aws/README.md explains the design.
 *
 * Key parts that come from events (user, app, model, provider, tag values) are escaped so a
 * `#` inside them can never be mistaken for a separator: `%` → `%25`, `#` → `%23`.
 */

export const GSI_HOURS = 'gsi1';
export const GSI_OUTBOX = 'gsi2';

/** Partition key of the outbox index while a delivery is pending or leased (sparse). */
export const OUTBOX_DUE = 'DUE';

export function esc(part: string): string {
  return part.replace(/%/g, '%25').replace(/#/g, '%23');
}

/** Non-negative epoch ms as a fixed-width string, so sort keys order like numbers. */
export function pad(ms: number): string {
  return String(Math.max(0, Math.trunc(ms))).padStart(15, '0');
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
/** 2026-03-10-14: the seed's sort key. */
export function hourLabel(ms: number): string {
  const s = iso(ms);
  return `${s.slice(0, 10)}-${s.slice(11, 13)}`;
}
export function dayLabel(ms: number): string {
  return iso(ms).slice(0, 10);
}
export function monthLabel(ms: number): string {
  return iso(ms).slice(0, 7);
}

export interface Dims {
  projectId: string;
  userId: string;
  appId: string;
  modelId: string;
  provider: string;
}

function dimsPart(d: Dims): string {
  return `${esc(d.userId)}#${esc(d.modelId)}#${esc(d.appId)}#${esc(d.provider)}`;
}

export interface ItemKey {
  pk: string;
  sk: string;
}

/**
 * The seed's hourly item: partition `H#<project>#<user>#<model>` (the seed's `userId#modelId`
 * with a tenant prefix), sort key `YYYY-MM-DD-HH#<app>#<provider>`. GSI1 lists a project's
 * hours of one UTC day (the dashboard's range queries).
 */
export function hourKey(d: Dims, bucketMs: number): ItemKey & { gsi1pk: string; gsi1sk: string } {
  const label = hourLabel(bucketMs);
  return {
    pk: `H#${esc(d.projectId)}#${esc(d.userId)}#${esc(d.modelId)}`,
    sk: `${label}#${esc(d.appId)}#${esc(d.provider)}`,
    gsi1pk: hourIndexPk(d.projectId, bucketMs),
    gsi1sk: `${label.slice(11)}#${dimsPart(d)}`,
  };
}
export function hourIndexPk(projectId: string, ms: number): string {
  return `H#${esc(projectId)}#${dayLabel(ms)}`;
}

/**
 * A project's minute rollups of one UTC day (they expire by TTL): pages of rows since minute
 * pages (minute-pages.ts); before, one item per row with sort key `HH:MM#user#model#app#provider`.
 */
export function minutePk(projectId: string, ms: number): string {
  return `M#${esc(projectId)}#${dayLabel(ms)}`;
}

/** Day items of a project, one partition per UTC month. */
export function dayKey(d: Dims, bucketMs: number): ItemKey {
  return { pk: dayPk(d.projectId, bucketMs), sk: `${dayLabel(bucketMs).slice(8)}#${dimsPart(d)}` };
}
export function dayPk(projectId: string, ms: number): string {
  return `D#${esc(projectId)}#${monthLabel(ms)}`;
}

/** Tag rollups: one partition per (project, tag key, UTC day) for hours, per month for days. */
export function tagHourKey(d: Dims, tagKey: string, tagValue: string, bucketMs: number): ItemKey {
  return {
    pk: tagHourPk(d.projectId, tagKey, bucketMs),
    sk: `${iso(bucketMs).slice(11, 13)}#${esc(tagValue)}#${dimsPart(d)}`,
  };
}
export function tagHourPk(projectId: string, tagKey: string, ms: number): string {
  return `TH#${esc(projectId)}#${esc(tagKey)}#${dayLabel(ms)}`;
}
export function tagDayKey(d: Dims, tagKey: string, tagValue: string, bucketMs: number): ItemKey {
  return {
    pk: tagDayPk(d.projectId, tagKey, bucketMs),
    sk: `${dayLabel(bucketMs).slice(8)}#${esc(tagValue)}#${dimsPart(d)}`,
  };
}
export function tagDayPk(projectId: string, tagKey: string, ms: number): string {
  return `TD#${esc(projectId)}#${esc(tagKey)}#${monthLabel(ms)}`;
}

/** The dedupe claim of one event id. */
export function eventKey(projectId: string, eventId: string): ItemKey {
  return { pk: `E#${esc(projectId)}#${eventId}`, sk: 'E' };
}

/** A batch's intent (its events and rules) and its done mark. */
export function batchIntentKey(batchId: string, part = 0): ItemKey {
  return { pk: `B#${batchId}`, sk: part === 0 ? 'I' : `I${part}` };
}
export function batchDoneKey(batchId: string): ItemKey {
  return { pk: `B#${batchId}`, sk: 'D' };
}

/** Rule counters: one partition per rule, sort key `<scopeKey>#<bucket>`. */
export function counterKey(ruleId: string, scopeKey: string, bucketStartMs: number): ItemKey {
  return { pk: counterPk(ruleId), sk: `${scopeKey}#${pad(bucketStartMs)}` };
}
export function counterPk(ruleId: string): string {
  return `C#${ruleId}`;
}

export function conflictPk(projectId: string): string {
  return `X#${esc(projectId)}`;
}

export const PROJECTS_PK = 'PROJECT';
/** Where rules were kept before they moved to one partition per project (read by migrate). */
export const LEGACY_RULES_PK = 'RULE';

/** A project's rules (sort key: the rule id) and its rule lock (see rule-lock.ts). */
export function rulesPk(projectId: string): string {
  return `R#${esc(projectId)}`;
}
export function ruleKey(projectId: string, ruleId: string): ItemKey {
  return { pk: rulesPk(projectId), sk: `R#${ruleId}` };
}
export function ruleLockKey(projectId: string): ItemKey {
  return { pk: rulesPk(projectId), sk: 'LOCK' };
}

export function projectPk(projectId: string): string {
  return `P#${esc(projectId)}`;
}
export function keyHashKey(hash: string): ItemKey {
  return { pk: `K#${hash}`, sk: 'K' };
}
export function alertsPk(projectId: string): string {
  return `A#${esc(projectId)}`;
}
export function deliveryKey(deliveryId: string): ItemKey {
  return { pk: `DLV#${deliveryId}`, sk: 'D' };
}

/** Attribute holding the idempotency mark of a batch on an aggregate item. */
export const MARK_PREFIX = 'tx_';
export function markAttr(batchId: string): string {
  return `${MARK_PREFIX}${batchId}`;
}

/** TTL attribute (epoch seconds) of the table. */
export const TTL_ATTR = 'expiresAt';
export function ttlSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** UTC days whose start lies in [floor(fromMs), toMs), as epoch ms. */
export function daysIn(fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  for (let d = Math.floor(fromMs / DAY_MS) * DAY_MS; d < toMs; d += DAY_MS) out.push(d);
  return out;
}
/** UTC months overlapping [fromMs, toMs), as epoch ms of their first day. */
export function monthsIn(fromMs: number, toMs: number): number[] {
  const out: number[] = [];
  const start = new Date(fromMs);
  let y = start.getUTCFullYear();
  let m = start.getUTCMonth();
  for (;;) {
    const ms = Date.UTC(y, m, 1);
    if (ms >= toMs) break;
    out.push(ms);
    m++;
    if (m === 12) {
      m = 0;
      y++;
    }
  }
  return out;
}

export const UNITS = { MINUTE_MS, HOUR_MS, DAY_MS };
