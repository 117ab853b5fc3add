/** One metric's line chart, drawn by uPlot from the points the execution's metadata gave. */
import React, { useEffect, useMemo, useRef } from 'react';
import uPlot from 'uplot';

import { chartData, chartSummary, formatNumber } from '../chart';
import { ISeries } from '../state';

/** The width when the panel's is not known yet. */
const WIDTH = 240;
const HEIGHT = 110;
/** Above this many points the line is drawn without its dots. */
const MAX_DOTS = 50;

/** A Lab theme colour (CSS variable) as the canvas needs it: a plain colour value. */
function themeColor(
  element: HTMLElement,
  name: string,
  fallback: string
): string {
  return getComputedStyle(element).getPropertyValue(name).trim() || fallback;
}

function options(
  element: HTMLElement,
  series: ISeries,
  points: number
): uPlot.Options {
  const line = themeColor(element, '--jp-brand-color1', '#1976d2');
  const text = themeColor(element, '--jp-ui-font-color2', '#616161');
  const grid = themeColor(element, '--jp-border-color2', '#e0e0e0');
  const axis: uPlot.Axis = {
    stroke: text,
    font: '10px sans-serif',
    size: 28,
    grid: { stroke: grid, width: 1 },
    ticks: { stroke: grid, width: 1 }
  };
  return {
    width: element.clientWidth || WIDTH,
    height: HEIGHT,
    legend: { show: false },
    cursor: { drag: { x: false, y: false } },
    scales: { x: { time: false } },
    axes: [axis, { ...axis, size: 40 }],
    series: [
      {},
      {
        label: series.name,
        stroke: line,
        width: 1.5,
        points: { show: points <= MAX_DOTS, size: 4, fill: line }
      }
    ]
  };
}

export function MetricChart(props: { series: ISeries }): JSX.Element {
  const { series } = props;
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const data = useMemo(() => chartData(series.points), [series.points]);
  const summary = chartSummary(series.points);
  const showDots = data[0].length <= MAX_DOTS;

  useEffect(() => {
    if (!box.current) {
      return;
    }
    const chart = new uPlot(
      options(box.current, series, data[0].length),
      data,
      box.current
    );
    plot.current = chart;
    // as wide as the panel, following it when the sidebar is resized
    const element = box.current;
    const observer = new ResizeObserver(() => {
      if (element.clientWidth && element.clientWidth !== chart.width) {
        chart.setSize({ width: element.clientWidth, height: HEIGHT });
      }
    });
    observer.observe(element);
    return () => {
      observer.disconnect();
      chart.destroy();
      plot.current = null;
    };
    // a new chart for another metric, or when the dots come or go; new points use setData
  }, [series.name, showDots]);

  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);

  return (
    <figure className="jp-Valohai-chart" data-metric={series.name}>
      <figcaption>
        <span className="jp-Valohai-metricName">{series.name}</span>{' '}
        <span className="jp-Valohai-metricValue">
          {summary.last !== null ? formatNumber(summary.last) : ''}
        </span>
        <span className="jp-Valohai-metricRange">
          {' '}
          (min {formatNumber(summary.min)}, max {formatNumber(summary.max)})
        </span>
      </figcaption>
      <div
        ref={box}
        className="jp-Valohai-chartPlot"
        role="img"
        aria-label={`${series.name} over ${summary.count} points`}
      />
    </figure>
  );
}
