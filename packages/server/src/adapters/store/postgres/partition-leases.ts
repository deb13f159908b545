import pg from 'pg';

/** Member slots: more workers than this on one stream share nothing more (each counts as one). */
const MEMBER_SLOTS = 64;

/**
 * Partition leases as PostgreSQL session advisory locks, held by one dedicated connection per
 * worker: a lock is released by `pg_advisory_unlock` or, when the worker dies (SIGKILL, crash,
 * lost network), by PostgreSQL as soon as it notices the session is gone. So a dead worker's
 * partitions are free again within moments, with no lease timeout to tune, and the database the
 * batches are written to is the one arbiter.
 *
 * Each worker also holds a member slot lock; the workers sharing a stream are the held slots,
 * read from `pg_locks`. The namespace (schema and stream) keeps deployments on one database apart.
 */
export class PgPartitionLeases {
  private client: pg.Client | undefined;
  private lost = true;
  slot = -1;

  constructor(
    private readonly url: string,
    private readonly namespace: string,
  ) {}

  private key(kind: 'member' | 'partition', n: number): string {
    return `tokenwatch-${kind}:${this.namespace}:${n}`;
  }

  get connected(): boolean {
    return !this.lost;
  }

  /** (Re)connects and takes a free member slot. Every lease of an earlier session is gone. */
  async connect(): Promise<void> {
    await this.close();
    const client = new pg.Client({
      connectionString: this.url,
      application_name: 'tokenwatch-leases',
      connectionTimeoutMillis: 5_000,
    });
    const onLost = () => {
      if (this.client === client) this.lost = true;
    };
    client.on('error', onLost);
    client.on('end', onLost);
    await client.connect();
    this.client = client;
    let slot = -1;
    for (let n = 0; n < MEMBER_SLOTS && slot < 0; n++) {
      const res = await client.query<{ ok: boolean }>(
        'SELECT pg_try_advisory_lock(hashtextextended($1, 13)) AS ok',
        [this.key('member', n)],
      );
      if (res.rows[0]?.ok === true) slot = n;
    }
    this.slot = slot;
    this.lost = false;
  }

  async members(): Promise<number> {
    const keys = Array.from({ length: MEMBER_SLOTS }, (_, n) => this.key('member', n));
    const res = await this.session().query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks l
       JOIN (SELECT hashtextextended(k, 13) AS h FROM unnest($1::text[]) AS k) x
         ON l.classid = ((x.h >> 32) & 4294967295)::oid AND l.objid = (x.h & 4294967295)::oid
       WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
         AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())`,
      [keys],
    );
    return Math.max(1, res.rows[0]?.n ?? 1);
  }

  async tryAcquire(partition: number): Promise<boolean> {
    const res = await this.session().query<{ ok: boolean }>(
      'SELECT pg_try_advisory_lock(hashtextextended($1, 13)) AS ok',
      [this.key('partition', partition)],
    );
    return res.rows[0]?.ok === true;
  }

  async release(partition: number): Promise<void> {
    await this.session().query('SELECT pg_advisory_unlock(hashtextextended($1, 13))', [
      this.key('partition', partition),
    ]);
  }

  private session(): pg.Client {
    if (!this.client || this.lost) throw new Error('partition lease session lost');
    return this.client;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.lost = true;
    await client?.end().catch(() => {});
  }
}
