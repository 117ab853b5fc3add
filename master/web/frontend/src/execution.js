// One execution: its log and metrics pushed as printed (the events stream), its status pushed by
// the project's feed, the executed notebook shown once it is there.
import { duration, el, setStatus, setText, TERMINAL } from './dom.js';
import { metricChart, metricKeys, xKey } from './charts.js';

const MAX_LOG_LINES = 20000;

export function startExecutionPage() {
  const root = document.getElementById('execution');
  if (!root) {
    return;
  }
  const log = document.getElementById('log');
  const metrics = startMetrics(document.getElementById('metrics'));
  let ended = TERMINAL.has(root.dataset.status);

  const events = new EventSource(root.dataset.events);
  events.addEventListener('log', (msg) => appendLog(log, JSON.parse(msg.data)));
  events.addEventListener('metadata', (msg) => {
    const data = JSON.parse(msg.data).data;
    if (data && typeof data === 'object' && !Array.isArray(data)) {
      metrics.add(data);
    }
  });
  events.addEventListener('end', (msg) => {
    events.close();
    const status = JSON.parse(msg.data).status;
    setStatus(document.getElementById('status'), status);
    root.dataset.status = status;
    if (!ended) {
      ended = true;
      showNotebook(root);
    }
    root.dataset.logEnded = 'true';
  });

  if (!ended) {
    const feed = new EventSource(root.dataset.feed);
    feed.addEventListener('execution', (msg) => {
      const e = JSON.parse(msg.data);
      if (e.id !== root.dataset.id) {
        return;
      }
      setStatus(document.getElementById('status'), e.status);
      root.dataset.status = e.status;
      setText('started', e.started_at);
      setText('ended', e.ended_at);
      setText('duration', duration(e.duration));
      setText('exit-code', e.exit_code);
      document.getElementById('status-message').textContent = e.status_message || '';
      const stop = document.getElementById('stop');
      stop.disabled = !(e.status === 'queued' || e.status === 'started');
      if (TERMINAL.has(e.status)) {
        feed.close();
        if (!ended) {
          ended = true;
          showNotebook(root);
        }
      }
    });
  }
}

export function appendLog(log, event) {
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
  const line = el('span', `line stream-${event.stream === 'stderr' ? 'stderr' : event.stream === 'status' ? 'status' : 'stdout'}`);
  line.textContent = event.message.endsWith('\n') ? event.message : `${event.message}\n`;
  log.appendChild(line);
  while (log.childNodes.length > MAX_LOG_LINES) {
    log.removeChild(log.firstChild);
  }
  if (atBottom) {
    log.scrollTop = log.scrollHeight;
  }
}

// Once, when the run is over: the outputs it registered (the page's own escaped HTML, re-read).
async function refreshOutputs() {
  const current = document.getElementById('outputs-section');
  const response = await fetch(window.location.href, { credentials: 'same-origin' });
  if (!current || !response.ok) {
    return;
  }
  const page = new DOMParser().parseFromString(await response.text(), 'text/html');
  const fresh = page.getElementById('outputs-section');
  if (fresh) {
    current.replaceWith(document.importNode(fresh, true));
  }
}

function showNotebook(root) {
  refreshOutputs().catch(() => undefined);
  const frame = document.getElementById('notebook');
  if (frame && root.dataset.notebook) {
    // The frame stays sandboxed (no allow-scripts); the URL answers with a no-script CSP too.
    frame.src = `${root.dataset.notebook}?t=${Date.now()}`;
  }
}

function startMetrics(container) {
  const entries = [];
  const charts = new Map();
  return {
    add(entry) {
      entries.push(entry);
      const empty = document.getElementById('metrics-empty');
      if (empty) {
        empty.remove();
      }
      const x = xKey(entries);
      for (const key of metricKeys(entries, x)) {
        if (charts.has(key)) {
          charts.get(key).update([entries]);
        } else {
          charts.set(key, metricChart(container, key, ['value'], [entries], x));
        }
      }
    },
  };
}
