/** The chosen environment's workers: state and current execution, read when opened. */
import React, { useEffect, useState } from 'react';

import { api } from '../api';
import { errorMessage } from '../errors';
import { IWorker, workerActivity, workersSummary } from '../workers';

export function WorkerList(props: {
  environmentId: string | null;
  projectId: string | null;
  /** Show an execution of the panel's list in detail (ids it knows), else null. */
  onShow: ((executionId: string) => void) | null;
  canShow: (executionId: string) => boolean;
}): JSX.Element | null {
  const [open, setOpen] = useState(false);
  const [workers, setWorkers] = useState<IWorker[] | null>(null);
  const [problem, setProblem] = useState('');
  const [reads, setReads] = useState(0);
  const { environmentId } = props;

  useEffect(() => {
    setWorkers(null);
    setProblem('');
    if (!open || !environmentId) {
      return;
    }
    let current = true;
    api.environmentWorkers(environmentId).then(
      list => current && setWorkers(list),
      e => current && setProblem(errorMessage(e))
    );
    return () => {
      current = false;
    };
  }, [open, environmentId, reads]);

  if (!environmentId) {
    return null;
  }
  return (
    <details
      className="jp-Valohai-workers"
      onToggle={event => setOpen((event.target as HTMLDetailsElement).open)}
    >
      <summary className="jp-Valohai-label">
        Workers{workers ? ` · ${workersSummary(workers)}` : ''}
      </summary>
      {problem && <div className="jp-Valohai-error">{problem}</div>}
      {open && !workers && !problem && (
        <div className="jp-Valohai-note">Loading…</div>
      )}
      <ul className="jp-Valohai-list" aria-label="Workers">
        {(workers ?? []).map(worker => {
          const executionId = worker.current_execution?.id;
          const activity = workerActivity(worker, props.projectId);
          return (
            <li
              key={worker.id}
              className="jp-Valohai-worker"
              data-worker={worker.name}
              data-state={worker.state}
            >
              <span className="jp-Valohai-itemTitle">{worker.name}</span>{' '}
              <span
                className={`jp-Valohai-status jp-Valohai-status-${worker.state}`}
              >
                {worker.state}
              </span>{' '}
              {executionId && props.onShow && props.canShow(executionId) ? (
                <button
                  className="jp-Valohai-linkButton"
                  onClick={() => props.onShow?.(executionId)}
                >
                  {activity}
                </button>
              ) : (
                <span className="jp-Valohai-note">{activity}</span>
              )}
            </li>
          );
        })}
      </ul>
      {open && (
        <button
          className="jp-Valohai-linkButton"
          onClick={() => setReads(n => n + 1)}
        >
          Refresh workers
        </button>
      )}
    </details>
  );
}
