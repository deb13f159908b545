/**
 * A cache bounded by an estimate of its bytes, with generational eviction: entries go into the
 * young generation; when it holds half the budget it becomes the old one (the previous old one
 * is dropped whole) and a new young one starts. A hit in the old generation is copied into the
 * young one, so entries in use survive every turn and the long tail read once falls out within
 * two. Cheaper than an LRU list (no per-hit bookkeeping) and it never holds more than the budget.
 *
 * Only for caches of values that can be read again from where they came from (a miss costs a
 * query, never a wrong answer).
 */
export class GenerationalCache<K, V> {
  private young = new Map<K, V>();
  private old = new Map<K, V>();
  private youngBytes = 0;
  private oldBytes = 0;

  /**
   * @param budgetBytes what both generations hold at most, by `sizeOf`'s estimate.
   * @param sizeOf the bytes an entry costs in the heap (key, value and the map's slot).
   */
  constructor(
    private readonly budgetBytes: number,
    private readonly sizeOf: (key: K, value: V) => number,
  ) {
    if (!(budgetBytes > 0)) throw new RangeError('budgetBytes must be positive');
  }

  get(key: K): V | undefined {
    const hit = this.young.get(key);
    if (hit !== undefined) return hit;
    const aged = this.old.get(key);
    if (aged !== undefined) this.set(key, aged);
    return aged;
  }

  has(key: K): boolean {
    return this.young.has(key) || this.old.has(key);
  }

  set(key: K, value: V): void {
    const had = this.young.get(key);
    if (had !== undefined) {
      this.youngBytes -= this.sizeOf(key, had);
      this.young.delete(key);
    }
    const bytes = this.sizeOf(key, value);
    // Each generation holds at most half the budget (an entry larger than that, alone).
    if (this.youngBytes + bytes > this.budgetBytes / 2 && this.young.size > 0) {
      this.old = this.young;
      this.oldBytes = this.youngBytes;
      this.young = new Map();
      this.youngBytes = 0;
    }
    this.young.set(key, value);
    this.youngBytes += bytes;
  }

  delete(key: K): void {
    const y = this.young.get(key);
    if (y !== undefined) {
      this.youngBytes -= this.sizeOf(key, y);
      this.young.delete(key);
    }
    const o = this.old.get(key);
    if (o !== undefined) {
      this.oldBytes -= this.sizeOf(key, o);
      this.old.delete(key);
    }
  }

  clear(): void {
    this.young = new Map();
    this.old = new Map();
    this.youngBytes = 0;
    this.oldBytes = 0;
  }

  /** The estimated bytes held (an entry in both generations counts twice, as it is held twice). */
  get bytes(): number {
    return this.youngBytes + this.oldBytes;
  }

  /** Entries held (one in both generations counts twice). */
  get size(): number {
    return this.young.size + this.old.size;
  }
}
