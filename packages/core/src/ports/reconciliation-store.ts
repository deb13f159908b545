import type { ReconciliationRow } from '../bedrock/reconcile.js';

/** A reconciliation row as stored: which project and which AWS regions it compared. */
export interface StoredReconciliationRow extends ReconciliationRow {
  projectId: string;
  /** The regions whose metrics were summed, comma-separated and sorted (`us-east-1,us-west-2`). */
  regions: string;
  computedAtMs: number;
}

/**
 * Where reconciliation results are kept for `GET /v1/reconciliation`, the dashboard and rules.
 * `replace` swaps every row of (project, regions) with an hour in [fromMs, toMs) for the new
 * ones: a later run over the same hours is the truth (late events, late metrics).
 */
export interface ReconciliationStore {
  replace(
    projectId: string,
    regions: string,
    fromMs: number,
    toMs: number,
    rows: readonly ReconciliationRow[],
    computedAtMs: number,
  ): Promise<void>;
  /** Rows of hours in [fromMs, toMs), every region set, by hour, then model, then metric. */
  list(projectId: string, fromMs: number, toMs: number): Promise<StoredReconciliationRow[]>;
  close(): Promise<void>;
}
