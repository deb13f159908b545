import type { ModelPriceEntry } from '../pricing/price-catalog.js';
import type { RuleStore } from './rule-store.js';
import type { UsageStore } from './usage-store.js';

export interface Project {
  id: string;
  name: string;
  createdAtMs: number;
}

export type KeyRole = 'ingest' | 'admin' | 'read';

/** An API key as stored: never the key itself, only its SHA-256 hash. */
export interface ApiKeyRecord {
  id: string;
  projectId: string;
  /** Hex SHA-256 of the full key. */
  hash: string;
  /** The first characters of the key, safe to show (`twk_ab12…`), to tell keys apart. */
  prefix: string;
  role: KeyRole;
  /** An ingest key bound to one app may only write events of that app. */
  appId: string | undefined;
  name: string | undefined;
  createdAtMs: number;
  revokedAtMs: number | undefined;
}

/** Projects (tenants), their API keys and their price overrides. */
export interface ProjectStore {
  /** Creates the project; `conflict` error if the id exists. */
  createProject(project: Project): Promise<void>;
  /** Undefined when there is no such project. */
  getProject(id: string): Promise<Project | undefined>;
  listProjects(): Promise<Project[]>;

  createKey(key: ApiKeyRecord): Promise<void>;
  /** The key with this hash, revoked or not; undefined when unknown. */
  findKeyByHash(hash: string): Promise<ApiKeyRecord | undefined>;
  listKeys(projectId: string): Promise<ApiKeyRecord[]>;
  /** Marks the key revoked; false when the project has no such key. */
  revokeKey(projectId: string, keyId: string, nowMs: number): Promise<boolean>;

  /** A project's own prices; they win over the bundled catalog (see PriceCatalog.withOverrides). */
  listPriceOverrides(projectId: string): Promise<ModelPriceEntry[]>;
  /** Inserts or replaces the override for (provider, modelId, effectiveFrom). */
  putPriceOverride(projectId: string, entry: ModelPriceEntry): Promise<void>;
  deletePriceOverride(
    projectId: string,
    provider: string,
    modelId: string,
    effectiveFrom: string,
  ): Promise<boolean>;
}

/** Everything one storage adapter provides. */
export interface Store extends UsageStore, ProjectStore, RuleStore {
  /** Creates or upgrades the schema; idempotent. */
  migrate(): Promise<void>;
  close(): Promise<void>;
}
