import type {
  ReconciliationRow,
  ReconciliationStore,
  StoredReconciliationRow,
} from '@tokenwatch/core';

export function sortStoredRows(rows: StoredReconciliationRow[]): StoredReconciliationRow[] {
  const order = ['inputTokens', 'outputTokens', 'cacheReadTokens', 'cacheWriteTokens'];
  return rows.sort(
    (a, b) =>
      a.hourStartMs - b.hourStartMs ||
      a.regions.localeCompare(b.regions) ||
      (a.modelId < b.modelId ? -1 : a.modelId > b.modelId ? 1 : 0) ||
      order.indexOf(a.metric) - order.indexOf(b.metric),
  );
}

/** In memory: tests and the memory store. */
export class MemoryReconciliationStore implements ReconciliationStore {
  private rows: StoredReconciliationRow[] = [];

  async replace(
    projectId: string,
    regions: string,
    fromMs: number,
    toMs: number,
    rows: readonly ReconciliationRow[],
    computedAtMs: number,
  ): Promise<void> {
    this.rows = this.rows.filter(
      (r) =>
        r.projectId !== projectId ||
        r.regions !== regions ||
        r.hourStartMs < fromMs ||
        r.hourStartMs >= toMs,
    );
    for (const r of rows) this.rows.push({ ...r, projectId, regions, computedAtMs });
  }

  async list(projectId: string, fromMs: number, toMs: number): Promise<StoredReconciliationRow[]> {
    return sortStoredRows(
      this.rows
        .filter((r) => r.projectId === projectId && r.hourStartMs >= fromMs && r.hourStartMs < toMs)
        .map((r) => ({ ...r })),
    );
  }

  async close(): Promise<void> {}
}
