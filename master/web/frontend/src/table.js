// A project's executions table: rows follow the project's feed (status, duration), new
// executions that match the filters appear on top.
import { duration, setStatus } from './dom.js';
import { timingChart } from './charts.js';

const FILTERS = {
  status: (e, v) => (v === 'incomplete' ? ['created', 'queued', 'started', 'stopping'].includes(e.status) : e.status === v),
  step: (e, v) => e.step === v,
  environment: (e, v) => e.environment.id === v,
  creator: (e, v) => e.creator.id === v,
};

export function startExecutionsTable() {
  const table = document.getElementById('executions');
  if (!table) {
    return;
  }
  const root = document.body.dataset.root;
  const project = table.dataset.project;
  const offset = new URLSearchParams(window.location.search).get('offset');
  const data = document.getElementById('timing-data');
  const rows = data ? JSON.parse(data.textContent) : [];
  const container = document.getElementById('timing');
  const timing = container ? timingChart(container, rows) : null;
  const feed = new EventSource(`${root}live/projects/${encodeURIComponent(project)}/executions?limit=0`);
  feed.addEventListener('execution', (msg) => {
    const e = JSON.parse(msg.data);
    let row = table.querySelector(`tr[data-id="${CSS.escape(e.id)}"]`);
    if (!row) {
      if ((offset && offset !== '0') || !matches(table, e)) {
        return;
      }
      row = newRow(root, e);
      table.tBodies[0].prepend(row);
    }
    setStatus(row.querySelector('.status'), e.status);
    row.querySelector('.duration').textContent = duration(e.duration);
    if (timing) {
      timing.set({ id: e.id, counter: e.counter, wait: queueWait(e), duration: e.duration });
    }
  });
}

function queueWait(e) {
  if (!e.queued_at || !e.started_at) {
    return null;
  }
  return Math.max((Date.parse(e.started_at) - Date.parse(e.queued_at)) / 1000, 0);
}

function matches(table, e) {
  return Object.entries(FILTERS).every(([key, test]) => {
    const wanted = table.dataset[`filter${key[0].toUpperCase()}${key.slice(1)}`];
    return !wanted || test(e, wanted);
  });
}

function newRow(root, e) {
  const row = document.getElementById('row-template').content.firstElementChild.cloneNode(true);
  row.dataset.id = e.id;
  row.querySelector('input').value = e.id;
  const link = row.querySelector('.counter a');
  link.href = `${root}p/${encodeURIComponent(e.project.id)}/executions/${e.counter}/`;
  link.textContent = `#${e.counter}`;
  row.querySelector('.step').textContent = e.step;
  row.querySelector('.title').textContent = e.title || '';
  row.querySelector('.environment').textContent = e.environment.name;
  row.querySelector('.creator').textContent = e.creator.username;
  row.querySelector('.ctime').textContent = e.ctime;
  return row;
}
