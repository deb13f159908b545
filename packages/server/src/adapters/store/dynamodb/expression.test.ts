import { describe, expect, it } from 'vitest';
import { joinConditions, UpdateBuilder } from './expression.js';

describe('joinConditions', () => {
  it('gives a single condition as it is, with no parentheses', () => {
    expect(joinConditions(['attribute_not_exists(#n0)'])).toBe('attribute_not_exists(#n0)');
    expect(joinConditions(['attribute_not_exists(#n0) OR #n1 < :v2'])).toBe(
      'attribute_not_exists(#n0) OR #n1 < :v2',
    );
  });

  it('groups each of several conditions, so an OR inside one stays inside it', () => {
    expect(joinConditions(['attribute_exists(pk)', 'attribute_not_exists(#n0) OR #n1 < :v2'])).toBe(
      '(attribute_exists(pk)) AND (attribute_not_exists(#n0) OR #n1 < :v2)',
    );
  });
});

describe('UpdateBuilder', () => {
  it('gives an attribute used twice one placeholder', () => {
    const u = new UpdateBuilder();
    u.setIfNotExists('total', 0);
    u.add('count', 1);
    u.condition(`attribute_not_exists(${u.name('total')})`);
    const built = u.build();
    expect(built.ExpressionAttributeNames).toEqual({ '#n0': 'total', '#n2': 'count' });
    expect(built.UpdateExpression).toBe('SET #n0 = if_not_exists(#n0, :v1) ADD #n2 :v3');
    expect(built.ConditionExpression).toBe('attribute_not_exists(#n0)');
  });
});
