/**
 * A small Prometheus registry. Labels are fixed, low-cardinality sets chosen in code (reason,
 * route, status): never a user, app, model or project id, so /metrics cannot leak tenant data
 * nor blow up a time-series database.
 */
type Labels = Record<string, string>;

function labelKey(labels: Labels): string {
  const keys = Object.keys(labels).sort();
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${String(labels[k]).replace(/["\\\n]/g, '_')}"`).join(',')}}`;
}

export class Counter {
  private readonly values = new Map<string, number>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    this.values.set(key, (this.values.get(key) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    if (this.values.size === 0) lines.push(`${this.name} 0`);
    for (const [k, v] of this.values) lines.push(`${this.name}${k} ${v}`);
    return lines.join('\n');
  }
}

export class Gauge {
  private value = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly read?: () => number,
    /** `counter` for a total kept by another component (read, never reset). */
    private readonly type: 'gauge' | 'counter' = 'gauge',
  ) {}
  set(v: number): void {
    this.value = v;
  }
  render(): string {
    const v = this.read ? this.read() : this.value;
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} ${this.type}`,
      `${this.name} ${v}`,
    ].join('\n');
  }
}

export class Histogram {
  private readonly counts: number[];
  private sum = 0;
  private count = 0;
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: readonly number[],
  ) {
    this.counts = buckets.map(() => 0);
  }
  observe(v: number): void {
    this.sum += v;
    this.count++;
    for (let i = 0; i < this.buckets.length; i++) {
      if (v <= (this.buckets[i] as number)) this.counts[i] = (this.counts[i] as number) + 1;
    }
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    this.buckets.forEach((b, i) => {
      lines.push(`${this.name}_bucket{le="${b}"} ${this.counts[i]}`);
    });
    lines.push(`${this.name}_bucket{le="+Inf"} ${this.count}`);
    lines.push(`${this.name}_sum ${this.sum}`, `${this.name}_count ${this.count}`);
    return lines.join('\n');
  }
}

/** The metrics tokenwatch exports; one instance per process, created in the composition root. */
export class Metrics {
  readonly ingestedEvents = new Counter(
    'tokenwatch_events_ingested_total',
    'Events accepted and counted.',
  );
  readonly duplicateEvents = new Counter(
    'tokenwatch_events_duplicate_total',
    'Events whose id was already counted (same payload).',
  );
  readonly conflictEvents = new Counter(
    'tokenwatch_events_conflict_total',
    'Events whose id was already counted with a different payload; the first was kept.',
  );
  readonly unpricedEvents = new Counter(
    'tokenwatch_events_unpriced_total',
    'Accepted events of models without a price.',
  );
  readonly rejectedRequests = new Counter(
    'tokenwatch_requests_rejected_total',
    'Ingest requests refused, by reason.',
  );
  readonly otlpSpans = new Counter(
    'tokenwatch_otlp_spans_total',
    'Spans received on POST /v1/traces, by outcome: counted, not_usage, wrapper, refused, duplicate.',
  );
  readonly httpRequests = new Counter(
    'tokenwatch_http_requests_total',
    'HTTP requests by route and status.',
  );
  readonly httpRequestsReceived = new Counter(
    'tokenwatch_http_requests_received_total',
    'HTTP requests parsed, including those dropped with a connection closed for pipelining.',
  );
  readonly httpConnectionsClosed = new Counter(
    'tokenwatch_http_connections_closed_total',
    'Connections the server closed or refused to protect itself, by reason: pipelining, max_connections, idle.',
  );
  readonly flushEvents = new Histogram(
    'tokenwatch_flush_events',
    'Events per flush (one transaction).',
    [1, 10, 100, 500, 1000, 2500, 5000, 10000, 25000],
  );
  readonly flushSeconds = new Histogram(
    'tokenwatch_flush_duration_seconds',
    'Time to apply one flush.',
    [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  );
  readonly flushFailures = new Counter(
    'tokenwatch_flush_failures_total',
    'Flushes that failed and were answered with 503.',
  );
  readonly alertsFired = new Counter(
    'tokenwatch_alerts_fired_total',
    'Alerts created (each exactly once per rule, scope, window and level).',
  );
  readonly alertDeliveries = new Counter(
    'tokenwatch_alert_deliveries_total',
    'Alert delivery attempts by channel type and outcome.',
  );
  readonly alertDeliverySeconds = new Histogram(
    'tokenwatch_alert_delivery_seconds',
    'Time of successful delivery attempts.',
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  );
  private readonly gauges: Gauge[] = [];

  addGauge(name: string, help: string, read: () => number): void {
    this.gauges.push(new Gauge(name, help, read));
  }

  /** A counter another component keeps (e.g. the SQLite checkpointer's failures). */
  addObservedCounter(name: string, help: string, read: () => number): void {
    this.gauges.push(new Gauge(name, help, read, 'counter'));
  }

  render(): string {
    return `${[
      this.ingestedEvents,
      this.duplicateEvents,
      this.conflictEvents,
      this.unpricedEvents,
      this.rejectedRequests,
      this.otlpSpans,
      this.httpRequests,
      this.httpRequestsReceived,
      this.httpConnectionsClosed,
      this.flushEvents,
      this.flushSeconds,
      this.flushFailures,
      this.alertsFired,
      this.alertDeliveries,
      this.alertDeliverySeconds,
      ...this.gauges,
    ]
      .map((m) => m.render())
      .join('\n')}\n`;
  }
}
