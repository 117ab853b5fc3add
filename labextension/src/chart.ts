/** The geometry of a small line chart of one metric (pure; drawn as SVG by MetricsChart). */

export interface IChartGeometry {
  /** The SVG path `d` of the line. */
  path: string;
  /** Each point in pixels, for the dots. */
  dots: { cx: number; cy: number }[];
  min: number;
  max: number;
  last: number | null;
}

/** Scale points into a width x height box with `pad` pixels of margin. */
export function chartGeometry(
  points: { x: number; y: number }[],
  width: number,
  height: number,
  pad = 4
): IChartGeometry {
  if (!points.length) {
    return { path: '', dots: [], min: 0, max: 0, last: null };
  }
  const xs = points.map(p => p.x);
  const ys = points.map(p => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const sx = (x: number): number =>
    x1 === x0 ? width / 2 : pad + ((x - x0) / (x1 - x0)) * (width - 2 * pad);
  const sy = (y: number): number =>
    y1 === y0
      ? height / 2
      : height - pad - ((y - y0) / (y1 - y0)) * (height - 2 * pad);
  const dots = points.map(p => ({ cx: round(sx(p.x)), cy: round(sy(p.y)) }));
  const path = dots.map((d, i) => `${i ? 'L' : 'M'}${d.cx},${d.cy}`).join(' ');
  return { path, dots, min: y0, max: y1, last: ys[ys.length - 1] };
}

const round = (value: number): number => Math.round(value * 10) / 10;
