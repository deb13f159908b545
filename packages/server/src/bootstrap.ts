import { type KeyRole, type Store, TokenwatchError } from '@tokenwatch/core';
import { generateKey } from './auth/api-keys.js';

export const DEFAULT_PROJECT_ID = 'default';

export interface FirstStartKeys {
  projectId: string;
  adminKey: string;
  ingestKey: string;
}

/**
 * On the very first start (no project at all) creates the default project with one admin and
 * one ingest key, and returns the keys so they can be printed ONCE. Later starts return
 * undefined: keys are stored only as hashes and cannot be shown again.
 */
export async function ensureDefaultProject(
  store: Store,
  nowMs: number,
): Promise<FirstStartKeys | undefined> {
  if ((await store.listProjects()).length > 0) return undefined;
  await store.createProject({
    id: DEFAULT_PROJECT_ID,
    name: 'Default project',
    createdAtMs: nowMs,
  });
  const admin = generateKey({
    projectId: DEFAULT_PROJECT_ID,
    role: 'admin',
    name: 'first-start admin',
    nowMs,
  });
  const ingest = generateKey({
    projectId: DEFAULT_PROJECT_ID,
    role: 'ingest',
    name: 'first-start ingest',
    nowMs,
  });
  await store.createKey(admin.record);
  await store.createKey(ingest.record);
  return { projectId: DEFAULT_PROJECT_ID, adminKey: admin.key, ingestKey: ingest.key };
}

/** Creates a key in a project, creating the project first if it does not exist yet. */
export async function createProjectKey(
  store: Store,
  options: {
    projectId: string;
    role: KeyRole;
    appId?: string | undefined;
    name?: string | undefined;
    nowMs: number;
  },
): Promise<{ key: string; id: string; projectCreated: boolean }> {
  let projectCreated = false;
  if (!(await store.getProject(options.projectId))) {
    await store.createProject({
      id: options.projectId,
      name: options.projectId,
      createdAtMs: options.nowMs,
    });
    projectCreated = true;
  }
  const created = generateKey(options);
  await store.createKey(created.record);
  return { key: created.key, id: created.record.id, projectCreated };
}

/**
 * The first admin and ingest keys of a deployment whose functions never create keys (AWS: a
 * key created inside a function could only be handed over through its logs). Creates the
 * project if missing. Refuses when the project already has an active admin key, unless
 * `force`: running it twice by mistake should not mint a second admin.
 */
export async function createFirstKeys(
  store: Store,
  options: { projectId: string; nowMs: number; force?: boolean },
): Promise<FirstStartKeys & { projectCreated: boolean }> {
  const { projectId, nowMs } = options;
  const existing = (await store.getProject(projectId)) ? await store.listKeys(projectId) : [];
  const activeAdmin = existing.find((k) => k.role === 'admin' && k.revokedAtMs === undefined);
  if (activeAdmin && !options.force) {
    throw new TokenwatchError(
      'conflict',
      `project "${projectId}" already has an active admin key (${activeAdmin.id}, ${activeAdmin.prefix}…); use --force to create another pair`,
    );
  }
  const admin = await createProjectKey(store, {
    projectId,
    role: 'admin',
    name: 'first admin',
    nowMs,
  });
  const ingest = await createProjectKey(store, {
    projectId,
    role: 'ingest',
    name: 'first ingest',
    nowMs,
  });
  return {
    projectId,
    adminKey: admin.key,
    ingestKey: ingest.key,
    projectCreated: admin.projectCreated,
  };
}
