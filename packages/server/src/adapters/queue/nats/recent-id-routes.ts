/**
 * Which partition each recently published (project, event id) went to, so that an id sent again
 * in a later request goes to the same partition as its first copy, whatever user the new copy
 * names.
 *
 * Why: "the first payload of an id wins" is decided by the worker transaction that claims the
 * id. Copies in one partition are applied in stream order, so the first published wins there.
 * Copies in two partitions (the repeat names another user) are applied by whichever worker gets
 * there first, and that can be the later copy when the first one's partition lags. Routing the
 * repeat after its first copy restores the stream order for it.
 *
 * A fixed table, not a map: 2^20 slots of a 32-bit tag and a partition (5 MiB), each (project,
 * id) hashed to one slot and overwriting what was there. An entry only has to live as long as a
 * first copy can wait unapplied in its partition (the queue's lag, seconds); after that the
 * first copy's claim is committed and decides the repeat wherever the repeat goes. At 30,000
 * events/s an entry outlives one second with probability e^(−30,000 / 2^20) ≈ 97 % and ten
 * seconds with 75 %. A stale or colliding entry only sends an event to another partition than
 * its user's: counting stays exact (ids are claimed in the transaction), two workers may then
 * wait on that user's row locks once.
 */
export class RecentIdRoutes {
  private readonly tags: Uint32Array;
  private readonly partitions: Uint8Array;
  private readonly mask: number;

  constructor(slotsLog2 = 20) {
    const slots = 2 ** slotsLog2;
    this.tags = new Uint32Array(slots);
    this.partitions = new Uint8Array(slots);
    this.mask = slots - 1;
  }

  /** The partition the id's last remembered copy went to, if still remembered. */
  get(projectId: string, eventId: string): number | undefined {
    const [slot, tag] = this.locate(projectId, eventId);
    return this.tags[slot] === tag ? this.partitions[slot] : undefined;
  }

  remember(projectId: string, eventId: string, partition: number): void {
    const [slot, tag] = this.locate(projectId, eventId);
    this.tags[slot] = tag;
    this.partitions[slot] = partition;
  }

  /** Two independent 32-bit hashes of the key: one picks the slot, the other is its tag (never 0). */
  private locate(projectId: string, eventId: string): [number, number] {
    let a = 0x811c9dc5;
    let b = 0x9747b28c;
    const key = `${projectId}\u0000${eventId}`;
    for (let i = 0; i < key.length; i++) {
      const c = key.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    return [fmix32(a) & this.mask, (fmix32(b) | 1) >>> 0];
  }
}

/** MurmurHash3's finaliser: every input bit reaches the low bits the slot is taken from. */
function fmix32(h: number): number {
  let x = h ^ (h >>> 16);
  x = Math.imul(x, 0x85ebca6b);
  x ^= x >>> 13;
  x = Math.imul(x, 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}
