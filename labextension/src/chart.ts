/**
 * The data of a metric's line chart, shaped for uPlot (pure: the drawing is uPlot's, in
 * MetricChart).
 */

/** uPlot's aligned data of one series: x values ascending, and the y value at each. */
export type ChartData = [number[], number[]];

export interface IChartSummary {
  min: number;
  max: number;
  /** The value reported last (not the one at the largest x). */
  last: number | null;
  count: number;
}

/**
 * Points as uPlot wants them: sorted by x (a stable sort, so points at the same x keep the
 * order they came in), non-finite values left out.
 */
export function chartData(points: { x: number; y: number }[]): ChartData {
  const kept = points
    .map((point, order) => ({ ...point, order }))
    .filter(p => Number.isFinite(p.x) && Number.isFinite(p.y))
    .sort((a, b) => a.x - b.x || a.order - b.order);
  return [kept.map(p => p.x), kept.map(p => p.y)];
}

/** What the caption says: last value, min and max, number of points. */
export function chartSummary(
  points: { x: number; y: number }[]
): IChartSummary {
  const ys = points.map(p => p.y).filter(Number.isFinite);
  if (!ys.length) {
    return { min: 0, max: 0, last: null, count: 0 };
  }
  return {
    min: Math.min(...ys),
    max: Math.max(...ys),
    last: ys[ys.length - 1],
    count: ys.length
  };
}

/** A number as the caption shows it: integers whole, others to 4 significant digits. */
export const formatNumber = (value: number): string =>
  Number.isInteger(value)
    ? String(value)
    : value.toPrecision(4).replace(/\.?0+$/, '');
