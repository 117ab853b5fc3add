// The environments table: queue depth, unfinished executions and workers, pushed on change.
export function startEnvironmentsPage() {
  const table = document.getElementById('environments');
  if (!table) {
    return;
  }
  const events = new EventSource(table.dataset.events);
  events.addEventListener('environments', (msg) => {
    for (const env of JSON.parse(msg.data)) {
      const row = table.querySelector(`tr[data-id="${CSS.escape(env.id)}"]`);
      if (row) {
        row.querySelector('.queue-depth').textContent = String(env.queue_depth);
        row.querySelector('.unfinished').textContent = String(env.unfinished_job_count ?? 0);
        row.querySelector('.workers').textContent = String(env.workers);
      }
    }
  });
}
