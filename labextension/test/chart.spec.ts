import { chartData, chartSummary, formatNumber } from '../src/chart';

describe('chartData', () => {
  it('is two empty columns without points', () => {
    expect(chartData([])).toEqual([[], []]);
  });

  it('sorts by x (uPlot needs ascending x), keeping the order of equal x', () => {
    expect(
      chartData([
        { x: 2, y: 5 },
        { x: 0, y: 0 },
        { x: 1, y: 10 },
        { x: 1, y: 11 }
      ])
    ).toEqual([
      [0, 1, 1, 2],
      [0, 10, 11, 5]
    ]);
  });

  it('leaves out values that are not finite numbers', () => {
    expect(
      chartData([
        { x: 0, y: 1 },
        { x: 1, y: NaN },
        { x: Infinity, y: 2 },
        { x: 2, y: 3 }
      ])
    ).toEqual([
      [0, 2],
      [1, 3]
    ]);
  });
});

describe('chartSummary', () => {
  it('says nothing without points', () => {
    expect(chartSummary([])).toEqual({ min: 0, max: 0, last: null, count: 0 });
  });

  it('gives min, max and the value reported last', () => {
    expect(
      chartSummary([
        { x: 3, y: 0.5 },
        { x: 1, y: 2 },
        { x: 2, y: -1 }
      ])
    ).toEqual({ min: -1, max: 2, last: -1, count: 3 });
  });
});

describe('formatNumber', () => {
  it('keeps integers and rounds others to 4 digits', () => {
    expect(formatNumber(42)).toBe('42');
    expect(formatNumber(0.123456)).toBe('0.1235');
    expect(formatNumber(0.5)).toBe('0.5');
  });
});
