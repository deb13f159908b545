import { BUNDLED_CATALOG, PriceCatalog, type ProjectStore } from '@tokenwatch/core';

/**
 * The price catalog of each project: the bundled catalog with the project's overrides on top.
 * Built once per project and rebuilt when that project's overrides change through this
 * process; other processes pick changes up within `ttlMs`.
 */
export class ProjectCatalogs {
  private readonly bundled = PriceCatalog.fromData(BUNDLED_CATALOG);
  private readonly cache = new Map<string, { catalog: PriceCatalog; until: number }>();

  constructor(
    private readonly store: Pick<ProjectStore, 'listPriceOverrides'>,
    private readonly ttlMs = 30_000,
    private readonly now: () => number = Date.now,
  ) {}

  get bundledCatalog(): PriceCatalog {
    return this.bundled;
  }

  async forProject(projectId: string): Promise<PriceCatalog> {
    const cached = this.cache.get(projectId);
    if (cached && cached.until > this.now()) return cached.catalog;
    const overrides = await this.store.listPriceOverrides(projectId);
    const catalog = overrides.length > 0 ? this.bundled.withOverrides(overrides) : this.bundled;
    this.cache.set(projectId, { catalog, until: this.now() + this.ttlMs });
    return catalog;
  }

  invalidate(projectId: string): void {
    this.cache.delete(projectId);
  }
}
