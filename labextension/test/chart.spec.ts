import { chartGeometry } from '../src/chart';

describe('chartGeometry', () => {
  it('is empty without points', () => {
    expect(chartGeometry([], 100, 50)).toEqual({
      path: '',
      dots: [],
      min: 0,
      max: 0,
      last: null
    });
  });

  it('scales into the box, y growing upwards', () => {
    const g = chartGeometry(
      [
        { x: 0, y: 0 },
        { x: 1, y: 10 },
        { x: 2, y: 5 }
      ],
      104,
      54,
      2
    );
    expect(g.dots).toEqual([
      { cx: 2, cy: 52 },
      { cx: 52, cy: 2 },
      { cx: 102, cy: 27 }
    ]);
    expect(g.path).toBe('M2,52 L52,2 L102,27');
    expect([g.min, g.max, g.last]).toEqual([0, 10, 5]);
  });

  it('centres a single point', () => {
    expect(chartGeometry([{ x: 3, y: 1 }], 100, 50).dots).toEqual([
      { cx: 50, cy: 25 }
    ]);
  });
});
