import { type CompiledRule, compileRule, type Rule, type RuleStore } from '@tokenwatch/core';
import type { Logger } from '../logging/logger.js';

/**
 * The enabled rules of every project, compiled, as the processor evaluates them. Reloaded from
 * the store when a rule changes through this process, and every few seconds to see changes made
 * by another process (the CLI, another server).
 */
export class RuleRegistry {
  private byProject = new Map<string, CompiledRule[]>();
  /** Changes made through this process that the store may not show yet (see `put`). */
  private readonly pending = new Map<string, { projectId: string; rule: Rule | undefined }>();
  private signature = '';
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: Array<() => void> = [];

  constructor(
    private readonly store: Pick<RuleStore, 'listRules'>,
    private readonly logger: Logger,
    private readonly reloadMs = 5_000,
  ) {}

  async load(): Promise<void> {
    const rules = await this.store.listRules();
    const signature = rules.map((r) => `${r.id}:${r.updatedAtMs}:${r.enabled}`).join(',');
    if (signature === this.signature) return;
    const next = new Map<string, CompiledRule[]>();
    for (const rule of rules) {
      if (!rule.enabled) continue;
      try {
        const list = next.get(rule.projectId) ?? [];
        list.push(compileRule(rule));
        next.set(rule.projectId, list);
      } catch (err) {
        this.logger.error('a stored rule cannot be evaluated; skipped', {
          ruleId: rule.id,
          error: err as Error,
        });
      }
    }
    this.byProject = next;
    this.signature = signature;
    if (this.pending.size > 0) this.applyPending();
    for (const listener of this.listeners) listener();
  }

  /**
   * Puts a rule into effect in this process before the store has it. The rule service calls
   * this BEFORE creating or re-seeding the rule in the store: every flush either runs before
   * the seeding (and the seed, read from the rollups, includes its events) or counts into the
   * rule itself — so no event falls between the seed and the first evaluation.
   */
  put(rule: Rule): void {
    this.pending.set(`${rule.projectId}\u0000${rule.id}`, { projectId: rule.projectId, rule });
    this.applyPending();
  }

  /** Takes a rule out of effect at once (before it is deleted from the store). */
  remove(projectId: string, ruleId: string): void {
    this.pending.set(`${projectId}\u0000${ruleId}`, { projectId, rule: undefined });
    this.applyPending();
  }

  /**
   * The store now has the change (or refused it): stop overriding it. Until then, a periodic
   * reload that read the store before the change keeps the local version in effect.
   */
  async settle(projectId: string, ruleId: string): Promise<void> {
    this.pending.delete(`${projectId}\u0000${ruleId}`);
    this.signature = '';
    await this.load();
  }

  private applyPending(): void {
    for (const [key, { projectId, rule }] of this.pending) {
      const ruleId = key.slice(projectId.length + 1);
      const list = (this.byProject.get(projectId) ?? []).filter((c) => c.rule.id !== ruleId);
      if (rule?.enabled) list.push(compileRule(rule));
      this.byProject.set(projectId, list);
    }
    this.signature = '';
  }

  /** Called after every (re)load that changed the rules. */
  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    this.timer = setInterval(() => {
      this.load().catch((err: unknown) =>
        this.logger.warn('rule reload failed', { error: err as Error }),
      );
    }, this.reloadMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  rulesFor(projectIds: Iterable<string>): CompiledRule[] {
    const out: CompiledRule[] = [];
    for (const id of projectIds) out.push(...(this.byProject.get(id) ?? []));
    return out;
  }

  all(): CompiledRule[] {
    return [...this.byProject.values()].flat();
  }
}
