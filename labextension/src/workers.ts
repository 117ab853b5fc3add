/** A worker group's workers as the panel shows them (`GET valohai/environments/{id}/workers`). */

export interface IWorker {
  id: string;
  name: string;
  /** idle, busy, draining, stale... as the master says. */
  state: string;
  /** The execution it runs (id), when busy. */
  execution?: string | null;
  execution_hidden?: boolean;
  drain?: boolean;
  version?: string;
  gpus?: number;
  last_seen?: string | null;
  idle_seconds?: number | null;
  /** Added by the server extension: the busy worker's execution, when readable. */
  current_execution?: {
    id: string;
    counter?: number;
    title?: string;
    status?: string;
    project?: { id: string; name?: string } | null;
  } | null;
}

/** "3 workers: 2 busy, 1 idle" (states in order of count, then name), "No workers." */
export function workersSummary(workers: IWorker[]): string {
  if (!workers.length) {
    return 'No workers.';
  }
  const counts = new Map<string, number>();
  for (const worker of workers) {
    counts.set(worker.state, (counts.get(worker.state) ?? 0) + 1);
  }
  const states = [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .map(([state, n]) => `${n} ${state}`);
  const s = workers.length === 1 ? '' : 's';
  return `${workers.length} worker${s}: ${states.join(', ')}`;
}

/** What a worker is doing: "#12 train (started) in iris", "an execution of another project", "". */
export function workerActivity(
  worker: IWorker,
  projectId?: string | null
): string {
  const current = worker.current_execution;
  if (current) {
    const title = current.title ? ` ${current.title}` : '';
    const status = current.status ? ` (${current.status})` : '';
    const project =
      current.project && current.project.id !== projectId
        ? ` in ${current.project.name || current.project.id}`
        : '';
    return `#${current.counter ?? '?'}${title}${status}${project}`;
  }
  if (worker.execution_hidden) {
    return 'an execution of a project you cannot read';
  }
  if (worker.execution) {
    return `execution ${worker.execution}`;
  }
  if (worker.state === 'idle' && typeof worker.idle_seconds === 'number') {
    return `idle for ${Math.round(worker.idle_seconds)} s`;
  }
  return '';
}
