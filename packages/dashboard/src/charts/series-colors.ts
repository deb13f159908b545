/**
 * One colour per model (or app) across every chart of a session: the stacked bars over time, the
 * app × model bars and the model share pie each rank their series on their own, so colouring by
 * rank would paint one model blue in one chart and orange in the next. A name keeps the palette
 * slot it was first given; a chart never shows two names in one slot (when more names than
 * slots have been seen, a name whose slot is taken in this chart moves to a free one, least
 * recently used first).
 */
export class SeriesColors {
  private readonly slotOf = new Map<string, number>();
  private readonly lastUsed: number[];
  private clock = 0;

  constructor(private readonly slots: number) {
    this.lastUsed = Array.from({ length: slots }, () => -1);
  }

  /** Palette slots for the names one chart shows, in order (at most `slots` names get distinct ones). */
  assign(dimension: string, names: readonly string[]): number[] {
    const taken = new Set<number>();
    const out: (number | undefined)[] = [];
    const tick = ++this.clock;
    const keyOf = (name: string) => `${dimension}\u0000${name}`;
    // First the names that have a slot keep it, then the others take free ones.
    for (const name of names) {
      const slot = this.slotOf.get(keyOf(name));
      const keep = slot !== undefined && !taken.has(slot);
      if (keep) taken.add(slot);
      out.push(keep ? slot : undefined);
    }
    return out.map((kept, i) => {
      let slot = kept;
      if (slot === undefined) {
        slot = this.freeSlot(taken);
        this.slotOf.set(keyOf(names[i] as string), slot);
        taken.add(slot);
      }
      this.lastUsed[slot] = tick;
      return slot;
    });
  }

  /** A slot no name of this chart holds: one never given out, else the least recently used. */
  private freeSlot(taken: ReadonlySet<number>): number {
    const given = new Set(this.slotOf.values());
    let best = -1;
    for (let s = 0; s < this.slots; s++) {
      if (taken.has(s)) continue;
      if (!given.has(s)) return s;
      if (best === -1 || (this.lastUsed[s] as number) < (this.lastUsed[best] as number)) best = s;
    }
    // More names in one chart than slots: colours repeat (charts cap their series below that).
    return best === -1 ? taken.size % this.slots : best;
  }
}
