/**
 * Builds update expressions with placeholders for every name and value, so attribute names
 * never collide with DynamoDB's reserved words (there are 573 of them, `errors` and `provider`
 * included).
 */
export class UpdateBuilder {
  /** Attribute name → its placeholder, so a name used twice gets one placeholder. */
  private readonly placeholders = new Map<string, string>();
  private readonly values: Record<string, unknown> = {};
  private readonly sets: string[] = [];
  private readonly adds: string[] = [];
  private readonly removes: string[] = [];
  private readonly conditions: string[] = [];
  private n = 0;

  name(attr: string): string {
    const existing = this.placeholders.get(attr);
    if (existing) return existing;
    const key = `#n${this.n++}`;
    this.placeholders.set(attr, key);
    return key;
  }

  value(v: unknown): string {
    const key = `:v${this.n++}`;
    this.values[key] = v;
    return key;
  }

  set(attr: string, v: unknown): this {
    this.sets.push(`${this.name(attr)} = ${this.value(v)}`);
    return this;
  }

  /** SET with a raw right-hand side; `{name}` and `{value}` helpers come from the builder. */
  setRaw(attr: string, rhs: string): this {
    this.sets.push(`${this.name(attr)} = ${rhs}`);
    return this;
  }

  setIfNotExists(attr: string, v: unknown): this {
    const n = this.name(attr);
    this.sets.push(`${n} = if_not_exists(${n}, ${this.value(v)})`);
    return this;
  }

  add(attr: string, v: number | bigint): this {
    this.adds.push(`${this.name(attr)} ${this.value(v)}`);
    return this;
  }

  remove(attr: string): this {
    this.removes.push(this.name(attr));
    return this;
  }

  condition(expr: string): this {
    this.conditions.push(expr);
    return this;
  }

  build(): {
    UpdateExpression: string;
    ExpressionAttributeNames: Record<string, string>;
    ExpressionAttributeValues?: Record<string, unknown>;
    ConditionExpression?: string;
  } {
    const parts: string[] = [];
    if (this.sets.length > 0) parts.push(`SET ${this.sets.join(', ')}`);
    if (this.adds.length > 0) parts.push(`ADD ${this.adds.join(', ')}`);
    if (this.removes.length > 0) parts.push(`REMOVE ${this.removes.join(', ')}`);
    return {
      UpdateExpression: parts.join(' '),
      ExpressionAttributeNames: Object.fromEntries(
        [...this.placeholders].map(([attr, key]) => [key, attr]),
      ),
      ...(Object.keys(this.values).length > 0 ? { ExpressionAttributeValues: this.values } : {}),
      ...(this.conditions.length > 0
        ? { ConditionExpression: joinConditions(this.conditions) }
        : {}),
    };
  }
}

/**
 * The conditions joined by AND, each grouped in parentheses when there are several. A single
 * one goes bare: the parentheses mean nothing to DynamoDB, but a PEG parser (dynalite's, which
 * the tests run against) tries every operand form inside them: `(attribute_not_exists(#n24))`
 * took 654 µs to parse there against 119 µs bare, a third of the DynamoDB rule oracle's CPU.
 */
export function joinConditions(conditions: readonly string[]): string {
  if (conditions.length === 1) return conditions[0] as string;
  return conditions.map((c) => `(${c})`).join(' AND ');
}
