// Metrics charts with uPlot: one chart per numeric metadata key, x the step (or entry number).
import uPlot from 'uplot';

const X_KEYS = ['step', 'epoch', 'iteration', 'iter'];
const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

function isNumber(value) {
  return typeof value === 'number' && Number.isFinite(value);
}

export function xKey(entries) {
  return X_KEYS.find((k) => entries.some((e) => isNumber(e[k]))) || null;
}

export function metricKeys(entries, x) {
  const keys = new Set();
  for (const entry of entries) {
    for (const [k, v] of Object.entries(entry)) {
      if (k !== x && isNumber(v)) {
        keys.add(k);
      }
    }
  }
  return [...keys].sort();
}

// Points of `key` in each run, on a shared sorted x axis (null where a run has no value).
export function align(runs, key) {
  const xs = new Set();
  const points = runs.map((entries) => {
    const x = xKey(entries);
    const map = new Map();
    entries.forEach((entry, i) => {
      if (isNumber(entry[key])) {
        const at = x && isNumber(entry[x]) ? entry[x] : i + 1;
        map.set(at, entry[key]);
        xs.add(at);
      }
    });
    return map;
  });
  const axis = [...xs].sort((a, b) => a - b);
  return [axis, ...points.map((map) => axis.map((at) => (map.has(at) ? map.get(at) : null)))];
}

function chartWidth(container) {
  return Math.max(280, Math.min(container.clientWidth || 600, 640));
}

// A chart of `key` for several runs (labels[i] names runs[i]); returns an updater.
export function metricChart(container, key, labels, runs, xLabel) {
  const box = document.createElement('div');
  box.className = 'chart';
  box.dataset.metric = key;
  container.appendChild(box);
  const opts = {
    title: key,
    width: chartWidth(container),
    height: 220,
    scales: { x: { time: false } },
    axes: [{ label: xLabel || 'step' }, {}],
    series: [
      { label: xLabel || 'step' },
      ...labels.map((label, i) => ({
        label,
        stroke: COLORS[i % COLORS.length],
        width: 2,
        spanGaps: true,
        points: { show: true, size: 5 },
      })),
    ],
  };
  const mark = (data) => {
    // What the canvas shows, also as attributes: for people with screen readers, and for tests.
    const last = data.slice(1).map((ys) => ys.filter((y) => y !== null).slice(-1)[0]);
    box.dataset.points = String(data[0].length);
    box.dataset.last = last.map((v) => (v === undefined ? '' : String(v))).join(',');
    box.setAttribute('aria-label', `${key}: last ${box.dataset.last}`);
  };
  const first = align(runs, key);
  const plot = new uPlot(opts, first, box);
  mark(first);
  return {
    update(newRuns) {
      const data = align(newRuns, key);
      plot.setData(data);
      mark(data);
    },
    plot,
  };
}

// Queue wait and run time per execution of a table (x: the execution's number).
export function timingChart(container, rows) {
  const box = document.createElement('div');
  box.className = 'chart';
  box.dataset.metric = 'timing';
  container.appendChild(box);
  const data = () => {
    const sorted = [...rows].sort((a, b) => a.counter - b.counter);
    return [sorted.map((r) => r.counter), sorted.map((r) => r.wait), sorted.map((r) => r.duration)];
  };
  const series = (label, stroke) => ({ label, stroke, width: 2, spanGaps: true, points: { show: true, size: 6 } });
  const plot = new uPlot(
    {
      title: 'seconds per execution',
      width: chartWidth(container),
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: 'execution #' }, {}],
      series: [{ label: '#' }, series('queue wait', '#ff7f0e'), series('run time', '#1f77b4')],
    },
    data(),
    box,
  );
  box.dataset.points = String(rows.length);
  return {
    set(row) {
      const at = rows.findIndex((r) => r.id === row.id);
      if (at >= 0) {
        rows[at] = row;
      } else {
        rows.push(row);
      }
      box.dataset.points = String(rows.length);
      plot.setData(data());
    },
  };
}
