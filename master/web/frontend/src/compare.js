// Several executions side by side: one chart per metric, one line per execution.
import { metricChart, metricKeys, xKey } from './charts.js';

export function startComparePage() {
  const data = document.getElementById('compare-data');
  const container = document.getElementById('compare-charts');
  if (!data || !container) {
    return;
  }
  const { executions } = JSON.parse(data.textContent);
  const runs = executions.map((e) => e.entries);
  const labels = executions.map((e) => e.label);
  const keys = new Set();
  for (const entries of runs) {
    for (const key of metricKeys(entries, xKey(entries))) {
      keys.add(key);
    }
  }
  for (const key of [...keys].sort()) {
    metricChart(container, key, labels, runs, xKey(runs.flat()));
  }
}
