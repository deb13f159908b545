import type { KeyRole, Store } from '@tokenwatch/core';
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
