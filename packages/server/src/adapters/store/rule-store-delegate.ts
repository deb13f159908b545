import type {
  AlertQuery,
  AlertRecord,
  DeliveryOutcome,
  DeliveryRecord,
  DeliveryStatus,
  NewAlert,
  Rule,
  RuleChange,
  RuleCounter,
  RuleStore,
} from '@tokenwatch/core';

/**
 * The rules half of a `Store` whose rules, alerts and outbox live in a rules engine of their
 * own (PostgreSQL, DynamoDB): every method is that engine's, so a store only names the engine.
 */
export abstract class RuleStoreDelegate implements RuleStore {
  protected abstract readonly rules: RuleStore;

  createRule(rule: Rule, nowMs: number): Promise<RuleChange> {
    return this.rules.createRule(rule, nowMs);
  }
  updateRule(rule: Rule, nowMs: number): Promise<RuleChange | undefined> {
    return this.rules.updateRule(rule, nowMs);
  }
  deleteRule(projectId: string, ruleId: string): Promise<boolean> {
    return this.rules.deleteRule(projectId, ruleId);
  }
  getRule(projectId: string, ruleId: string): Promise<Rule | undefined> {
    return this.rules.getRule(projectId, ruleId);
  }
  listRules(projectId?: string): Promise<Rule[]> {
    return this.rules.listRules(projectId);
  }
  readCounters(
    counterKey: string,
    fromMs: number,
    toMs: number,
    scopeKey?: string,
  ): Promise<RuleCounter[]> {
    return this.rules.readCounters(counterKey, fromMs, toMs, scopeKey);
  }
  fireAlerts(alerts: readonly NewAlert[], nowMs: number): Promise<NewAlert[]> {
    return this.rules.fireAlerts(alerts, nowMs);
  }
  listAlerts(query: AlertQuery): Promise<AlertRecord[]> {
    return this.rules.listAlerts(query);
  }
  acknowledgeAlert(projectId: string, alertId: string, nowMs: number): Promise<boolean> {
    return this.rules.acknowledgeAlert(projectId, alertId, nowMs);
  }
  claimDeliveries(nowMs: number, limit: number, leaseMs: number): Promise<DeliveryRecord[]> {
    return this.rules.claimDeliveries(nowMs, limit, leaseMs);
  }
  completeDelivery(id: string, outcome: DeliveryOutcome, nowMs: number): Promise<void> {
    return this.rules.completeDelivery(id, outcome, nowMs);
  }
  listDeliveries(
    projectId: string,
    filter: { alertId?: string | undefined; status?: DeliveryStatus | undefined },
    limit: number,
  ): Promise<DeliveryRecord[]> {
    return this.rules.listDeliveries(projectId, filter, limit);
  }
}
