/**
 * Fixed-capacity FIFO: push, shift and drop-oldest are O(1) and never allocate, so a dead
 * collector cannot grow memory past the capacity.
 */
export class RingBuffer<T> {
  readonly capacity: number;
  private readonly items: (T | undefined)[];
  private head = 0;
  private size = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
    this.items = new Array<T | undefined>(capacity);
  }

  get length(): number {
    return this.size;
  }

  /** Adds at the tail; the caller checks for room first. */
  push(item: T): void {
    this.items[(this.head + this.size) % this.capacity] = item;
    this.size++;
  }

  shift(): T | undefined {
    if (this.size === 0) return undefined;
    const item = this.items[this.head];
    this.items[this.head] = undefined;
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return item;
  }

  /** Removes and returns up to `n` items from the head. */
  take(n: number): T[] {
    const count = Math.min(n, this.size);
    const out = new Array<T>(count);
    for (let i = 0; i < count; i++) out[i] = this.shift() as T;
    return out;
  }

  /** Puts items back at the head, in order (a batch that must wait its turn again). */
  unshiftAll(items: readonly T[]): void {
    for (let i = items.length - 1; i >= 0; i--) {
      this.head = (this.head - 1 + this.capacity) % this.capacity;
      this.items[this.head] = items[i];
      this.size++;
    }
  }

  clear(): T[] {
    return this.take(this.size);
  }
}
