import { type CompiledRule, compileRule, type Rule, type RuleStore } from '@tokenwatch/core';
import type { Logger } from '../logging/logger.js';

/**
 * The enabled rules of every project, compiled, for what a process answers about rules without
 * counting (budget checks, rule status). Counting never depends on it: the store evaluates the
 * rules it holds in each batch's transaction. Reloaded when a rule changes through this process,
 * and every few seconds to see changes made by another process (the CLI, another server).
 */
export class RuleRegistry {
  private byProject = new Map<string, CompiledRule[]>();
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
    const signature = rules
      .map((r: Rule) => `${r.id}:${r.updatedAtMs}:${r.enabled}:${r.countingSinceMs ?? ''}`)
      .join(',');
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
    for (const listener of this.listeners) listener();
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
