// A deployment endpoint: its build log pushed as the build runs, the status at the end.
import { appendLog } from './execution.js';
import { setStatus } from './dom.js';

export function startEndpointPage() {
  const root = document.getElementById('endpoint');
  if (!root) {
    return;
  }
  const log = document.getElementById('log');
  const events = new EventSource(root.dataset.events);
  events.addEventListener('log', (msg) => appendLog(log, JSON.parse(msg.data)));
  events.addEventListener('end', (msg) => {
    events.close();
    const status = JSON.parse(msg.data).status;
    setStatus(document.getElementById('status'), status);
    root.dataset.status = status;
    root.dataset.logEnded = 'true';
  });
}
