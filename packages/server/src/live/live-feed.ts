/** What subscribers of a project hear about, in commit order. */
export type LiveMessage =
  | {
      type: 'usage';
      /** Wall-clock time of the commit. */
      atMs: number;
      /** Newly counted events of this project in the flush, and their totals. */
      events: number;
      totalTokens: number;
      costNanoUsd: string;
      /** Distinct users, apps and models touched, capped (for highlighting in views). */
      users: string[];
      apps: string[];
      models: string[];
    }
  | { type: 'alert'; atMs: number; alert: Record<string, unknown> };

type Listener = (message: LiveMessage) => void;

/**
 * In-process fan-out of "something changed" notices per project, for server-sent events.
 * Publishing never blocks or throws: a listener that throws is dropped.
 */
export class LiveFeed {
  private readonly listeners = new Map<string, Set<Listener>>();

  subscribe(projectId: string, listener: Listener): () => void {
    let set = this.listeners.get(projectId);
    if (!set) {
      set = new Set();
      this.listeners.set(projectId, set);
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0) this.listeners.delete(projectId);
    };
  }

  publish(projectId: string, message: LiveMessage): void {
    const set = this.listeners.get(projectId);
    if (!set) return;
    for (const listener of set) {
      try {
        listener(message);
      } catch {
        set.delete(listener);
      }
    }
  }

  hasListeners(projectId: string): boolean {
    return this.listeners.has(projectId);
  }

  get subscriberCount(): number {
    let n = 0;
    for (const set of this.listeners.values()) n += set.size;
    return n;
  }
}
