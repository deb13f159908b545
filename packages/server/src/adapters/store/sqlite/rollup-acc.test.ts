import { emptyLatencyHistogram, latencyBucketOf } from '@tokenwatch/core';
import { makePricedEvent } from '@tokenwatch/core/testing';
import { describe, expect, it } from 'vitest';
import { Acc } from './rollup-acc.js';

/** The histogram an accumulator holds, whichever way it holds it. */
function histogramOf(a: Acc): number[] {
  if (a.latency) return [...a.latency];
  const h = emptyLatencyHistogram();
  if (a.soleCount > 0) h[a.soleBucket] = a.soleCount;
  return h;
}

function reference(latencies: number[]): number[] {
  const h = emptyLatencyHistogram();
  for (const ms of latencies) {
    const i = latencyBucketOf(ms);
    h[i] = (h[i] as number) + 1;
  }
  return h;
}

describe('Acc latency histogram', () => {
  it('holds one bucket without an array, and becomes a histogram when calls span several', () => {
    const a = new Acc(0, 0, 1);
    a.addEvent(makePricedEvent({ latencyMs: 700 }), true);
    a.addEvent(makePricedEvent({ latencyMs: 800 }), true);
    expect([a.latency, a.soleBucket, a.soleCount]).toEqual([undefined, 8, 2]);
    a.addEvent(makePricedEvent({ latencyMs: 10 }), true);
    a.addEvent(makePricedEvent({ latencyMs: undefined }), true);
    expect(a.latency).toEqual(reference([700, 800, 10]));
  });

  it('adds exactly across every combination of sole and full histograms, only when kept', () => {
    const cases = [[], [30], [30, 30], [30, 5_000], [200_000, 1, 1]];
    for (const left of cases) {
      for (const right of cases) {
        const a = new Acc(0, 0, 1);
        const b = new Acc(0, 0, 2);
        for (const ms of left) a.addEvent(makePricedEvent({ latencyMs: ms }), true);
        for (const ms of right) b.addEvent(makePricedEvent({ latencyMs: ms }), true);
        const notKept = new Acc(0, 0, 3);
        notKept.add(b, false);
        expect(histogramOf(notKept)).toEqual(emptyLatencyHistogram());
        a.add(b, true);
        expect(histogramOf(a), `${left} + ${right}`).toEqual(reference([...left, ...right]));
      }
    }
  });

  it('counts no latency for rows that do not keep it (minute, tags)', () => {
    const a = new Acc(0, 0, 1);
    a.addEvent(makePricedEvent({ latencyMs: 700 }), false);
    expect(histogramOf(a)).toEqual(emptyLatencyHistogram());
    expect(a.requests).toBe(1);
  });
});
