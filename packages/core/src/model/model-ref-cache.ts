import type { ModelRef } from './model-ref.js';
import { normaliseModel } from './normalise-model.js';

/**
 * Remembers `normaliseModel`'s answers: ingest sees a handful of distinct (provider, model id)
 * pairs over and over, and parsing a Bedrock id or ARN each time cost more than pricing the
 * event. Bounded: past `maxEntries` distinct pairs it starts again empty (a miss only costs the
 * parse). The refs it hands out are frozen and shared.
 */
export class ModelRefCache {
  private readonly refs = new Map<string, ModelRef>();

  constructor(private readonly maxEntries = 4096) {}

  of(provider: string | undefined, rawModelId: string): ModelRef {
    // \u0001 stands for "no provider", which normaliseModel treats apart from any string.
    const key = `${provider ?? '\u0001'}\u0000${rawModelId}`;
    let ref = this.refs.get(key);
    if (ref === undefined) {
      const made = normaliseModel(provider, rawModelId);
      ref = Object.freeze({ ...made, priceKeys: Object.freeze([...made.priceKeys]) }) as ModelRef;
      if (this.refs.size >= this.maxEntries) this.refs.clear();
      this.refs.set(key, ref);
    }
    return ref;
  }
}
