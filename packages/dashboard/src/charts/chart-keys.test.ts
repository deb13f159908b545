import { describe, expect, it } from 'vitest';
import { describeItem, itemAt } from './chart-keys.js';

describe('itemAt', () => {
  it('names a bar by its category axis and skips gaps', () => {
    const option = {
      xAxis: [{ type: 'category', data: ['10:00', '11:00'] }],
      yAxis: [{ type: 'value' }],
      series: [{ name: 'nova-lite', data: [5, null] }],
    };
    expect(itemAt(option, 0, 0)).toEqual({
      seriesIndex: 0,
      seriesName: 'nova-lite',
      dataIndex: 0,
      name: '10:00',
      value: 5,
    });
    expect(itemAt(option, 0, 1)).toBeUndefined();
    expect(itemAt(option, 1, 0)).toBeUndefined();
  });

  it('names a horizontal bar by the y axis, a slice by its own name, a cell by both axes', () => {
    const bars = {
      xAxis: [{ type: 'value' }],
      yAxis: [{ type: 'category', data: ['chat', 'search'] }],
      series: [{ name: 'm', data: [{ value: 3 }, { value: 4 }] }],
    };
    expect(itemAt(bars, 0, 1)?.name).toBe('search');
    expect(itemAt(bars, 0, 1)?.value).toBe(4);
    const pie = { series: [{ name: 'share', data: [{ name: 'nova-pro', value: 9 }] }] };
    expect(itemAt(pie, 0, 0)?.name).toBe('nova-pro');
    const heat = {
      xAxis: [{ type: 'category', data: ['chat', 'search'] }],
      yAxis: [{ type: 'category', data: ['u1', 'u2'] }],
      series: [{ name: 'h', data: [[1, 0, 12]] }],
    };
    const cell = itemAt(heat, 0, 0);
    expect(cell?.name).toBe('search × u1');
    expect(cell?.value).toEqual([1, 0, 12]);
    expect(describeItem(cell as NonNullable<typeof cell>)).toBe(
      'h, search × u1: 12. Enter opens it.',
    );
  });
});
