export { BUNDLED_CATALOG } from './catalog-data.js';
export type { TokenCounts } from './cost.js';
export { costNanoUsd, formatNanoUsd } from './cost.js';
export type { ModelPriceEntry, PriceCatalogData, ResolvedPrice } from './price-catalog.js';
export { PriceCatalog, parseDecimalUsd } from './price-catalog.js';
