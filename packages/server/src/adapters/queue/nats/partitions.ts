import { fnv1a } from '../../../util/fnv1a.js';

/**
 * The stream's partitions: an event goes to `<subject>.<partition>`, the partition being a hash
 * of (project, user) modulo `partitions`. Every rollup row (keyed by a series, which includes
 * the user) and every per-user rule counter then belongs to exactly one partition, and a
 * partition is consumed by one worker at a time (see PartitionBalancer): two workers never
 * update the same one of those rows, so their transactions do not wait on each other's locks.
 */

export function partitionOf(projectId: string, userId: string, partitions: number): number {
  return partitions <= 1 ? 0 : fnv1a(`${projectId}\u0000${userId}`) % partitions;
}

export function partitionSubject(subject: string, partition: number): string {
  return `${subject}.${partition}`;
}

/** The durable consumer of one partition (the workers' `queue.consumer` is its prefix). */
export function partitionConsumer(consumer: string, partition: number): string {
  return `${consumer}-p${partition}`;
}
