import { randomBytes } from 'node:crypto';
import {
  type ChannelConfig,
  type NewAlert,
  parseRuleInput,
  type Rule,
  type RuleChange,
  type RuleInput,
  type Store,
  TokenwatchError,
  type ValidationIssue,
} from '@tokenwatch/core';
import { checkUrl, type NetworkPolicy } from '../adapters/notify/ssrf-guard.js';
import { generateWebhookSecret } from '../adapters/notify/webhook/webhook-notifier.js';
import type { BudgetEnforcer } from './budget-enforcer.js';
import type { RuleRegistry } from './rule-registry.js';

/** Prefix of the ids of rules that come from the config file (they follow the file). */
export const CONFIG_RULE_PREFIX = 'cfg-';

export function newRuleId(): string {
  return `rule_${randomBytes(8).toString('hex')}`;
}

/**
 * Rule management shared by the HTTP API, the CLI and the config file: validation (every field),
 * SSRF checks of webhook and Slack URLs when saved, a signing secret for webhooks that have
 * none, then the store (which starts the rule counting and fires what it owes at once), then
 * this process's registry and budget cache, and the alerts the save fired.
 */
export class RuleService {
  constructor(
    private readonly store: Store,
    private readonly policy: NetworkPolicy,
    private readonly registry?: RuleRegistry,
    private readonly enforcer?: BudgetEnforcer,
    private readonly now: () => number = Date.now,
    /** Alerts a save fired (a rule that starts counting over a level): send them on. */
    private readonly onAlerts: (alerts: NewAlert[]) => void = () => {},
  ) {}

  private async prepareChannels(
    channels: ChannelConfig[],
    field: string,
  ): Promise<ChannelConfig[]> {
    const issues: ValidationIssue[] = [];
    const out: ChannelConfig[] = [];
    for (const [i, channel] of channels.entries()) {
      if (channel.type === 'webhook' || channel.type === 'slack') {
        try {
          await checkUrl(channel.url, this.policy);
        } catch (err) {
          issues.push({ field: `${field}channels[${i}].url`, reason: (err as Error).message });
        }
      }
      out.push(
        channel.type === 'webhook' && !channel.secret
          ? { ...channel, secret: generateWebhookSecret() }
          : channel,
      );
    }
    if (issues.length > 0)
      throw new TokenwatchError('invalid_argument', 'The rule is invalid.', { details: issues });
    return out;
  }

  private async reload(): Promise<void> {
    this.enforcer?.invalidate();
    await this.registry?.load();
  }

  private async saved(change: RuleChange): Promise<Rule> {
    await this.reload();
    if (change.alerts.length > 0) this.onAlerts(change.alerts);
    return change.rule;
  }

  async create(projectId: string, raw: unknown, id = newRuleId()): Promise<Rule> {
    const input = parseRuleInput(raw);
    return this.createParsed(projectId, input, id);
  }

  private async createParsed(
    projectId: string,
    input: RuleInput,
    id: string,
    field = '',
  ): Promise<Rule> {
    const nowMs = this.now();
    const rule: Rule = {
      id,
      projectId,
      name: input.name,
      scope: input.scope,
      filters: input.filters ?? {},
      metric: input.metric,
      window: input.window,
      budget: input.budget,
      levels: input.levels,
      forecast: input.forecast ?? false,
      channels: await this.prepareChannels(input.channels, field),
      enforce: input.enforce ?? false,
      enabled: input.enabled ?? true,
      createdAtMs: nowMs,
      updatedAtMs: nowMs,
    };
    return this.saved(await this.store.createRule(rule, nowMs));
  }

  /** Replaces a rule's definition (PUT semantics); keeps webhook secrets unless new ones are given. */
  async update(projectId: string, ruleId: string, raw: unknown): Promise<Rule> {
    const existing = await this.store.getRule(projectId, ruleId);
    if (!existing) throw new TokenwatchError('not_found', `no rule "${ruleId}" in this project`);
    const input = parseRuleInput(raw);
    return this.updateParsed(existing, input);
  }

  private async updateParsed(existing: Rule, input: RuleInput, field = ''): Promise<Rule> {
    const channels = input.channels.map((c, i) => {
      const old = existing.channels[i];
      return c.type === 'webhook' &&
        !c.secret &&
        old?.type === 'webhook' &&
        old.url === c.url &&
        old.secret
        ? { ...c, secret: old.secret }
        : c;
    });
    const nowMs = this.now();
    const rule: Rule = {
      ...existing,
      name: input.name,
      scope: input.scope,
      filters: input.filters ?? {},
      metric: input.metric,
      window: input.window,
      budget: input.budget,
      levels: input.levels,
      forecast: input.forecast ?? false,
      channels: await this.prepareChannels(channels, field),
      enforce: input.enforce ?? false,
      enabled: input.enabled ?? true,
      updatedAtMs: nowMs,
    };
    return this.updated(await this.store.updateRule(rule, nowMs), rule);
  }

  private async updated(change: RuleChange | undefined, rule: Rule): Promise<Rule> {
    if (!change) throw new TokenwatchError('not_found', `no rule "${rule.id}" in this project`);
    return this.saved(change);
  }

  async setEnabled(projectId: string, ruleId: string, enabled: boolean): Promise<Rule> {
    const existing = await this.store.getRule(projectId, ruleId);
    if (!existing) throw new TokenwatchError('not_found', `no rule "${ruleId}" in this project`);
    const rule = { ...existing, enabled, updatedAtMs: this.now() };
    return this.updated(await this.store.updateRule(rule, this.now()), rule);
  }

  async delete(projectId: string, ruleId: string): Promise<void> {
    const deleted = await this.store.deleteRule(projectId, ruleId);
    await this.reload();
    if (!deleted) throw new TokenwatchError('not_found', `no rule "${ruleId}" in this project`);
  }

  /**
   * Makes the store's config rules (ids `cfg-…`) match the config file: creates new ones,
   * updates changed ones, deletes the ones no longer in the file.
   */
  async syncConfigRules(
    rules: ReadonlyArray<{ id: string; project: string; input: RuleInput }>,
  ): Promise<void> {
    const wanted = new Map(rules.map((r) => [`${r.project}\u0000${r.id}`, r]));
    for (const existing of await this.store.listRules()) {
      if (
        existing.id.startsWith(CONFIG_RULE_PREFIX) &&
        !wanted.has(`${existing.projectId}\u0000${existing.id}`)
      ) {
        await this.store.deleteRule(existing.projectId, existing.id);
      }
    }
    for (const [i, r] of rules.entries()) {
      const existing = await this.store.getRule(r.project, r.id);
      if (!existing) {
        if (!(await this.store.getProject(r.project))) {
          await this.store.createProject({
            id: r.project,
            name: r.project,
            createdAtMs: this.now(),
          });
        }
        await this.createParsed(r.project, r.input, r.id, `rules[${i}].`);
        continue;
      }
      const {
        id: _id,
        projectId: _p,
        createdAtMs: _c,
        updatedAtMs: _u,
        channels: oldChannels,
        ...oldRest
      } = existing;
      const candidate = {
        ...oldRest,
        ...r.input,
        filters: r.input.filters ?? {},
        budget: r.input.budget,
        forecast: r.input.forecast ?? false,
        enforce: r.input.enforce ?? false,
        enabled: r.input.enabled ?? true,
      };
      const sameChannels =
        JSON.stringify(
          oldChannels.map((c) => (c.type === 'webhook' ? { ...c, secret: undefined } : c)),
        ) ===
        JSON.stringify(
          r.input.channels.map((c) => (c.type === 'webhook' ? { ...c, secret: undefined } : c)),
        );
      if (!sameChannels || JSON.stringify(candidate) !== JSON.stringify({ ...oldRest })) {
        await this.updateParsed(existing, r.input, `rules[${i}].`);
      }
    }
    await this.reload();
  }
}
