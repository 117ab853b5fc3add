/** The project's executions, newest first, with their live status (pushed for the project). */
import React from 'react';

import { formatDuration, runningCell } from '../state';
import { IDescribeExecution } from '../types';

export function StatusBadge(props: { status: string }): JSX.Element {
  return (
    <span
      className={`jp-Valohai-status jp-Valohai-status-${props.status}`}
      data-status={props.status}
    >
      {props.status}
    </span>
  );
}

export function ExecutionList(props: {
  executions: IDescribeExecution[];
  selected: string | null;
  loading: boolean;
  /** Why the list is not live just now ('' when it is). */
  problem?: string;
  onSelect: (id: string) => void;
  onRefresh: () => void;
}): JSX.Element {
  return (
    <div className="jp-Valohai-section jp-Valohai-executions">
      <h3 className="jp-Valohai-heading">
        Executions
        <button
          className="jp-Valohai-linkButton"
          onClick={props.onRefresh}
          disabled={props.loading}
        >
          {props.loading ? 'Loading…' : 'Reload'}
        </button>
      </h3>
      {props.problem && (
        <div className="jp-Valohai-note jp-Valohai-listProblem" role="status">
          {props.problem} Retrying…
        </div>
      )}
      {!props.executions.length && !props.loading && (
        <div className="jp-Valohai-note">
          No executions in this project yet.
        </div>
      )}
      <ul className="jp-Valohai-list" aria-label="Executions">
        {props.executions.map(execution => {
          const cells = runningCell(execution);
          return (
            <li
              key={execution.id}
              className={`jp-Valohai-item${execution.id === props.selected ? ' jp-mod-selected' : ''}`}
              data-execution={execution.id}
              data-counter={execution.counter}
            >
              <button
                className="jp-Valohai-itemButton"
                onClick={() => props.onSelect(execution.id)}
              >
                <span className="jp-Valohai-counter">#{execution.counter}</span>
                <span className="jp-Valohai-itemTitle">
                  {execution.title || execution.step}
                </span>
                <StatusBadge status={execution.status} />
                {cells && <span className="jp-Valohai-cells">{cells}</span>}
                <span className="jp-Valohai-duration">
                  {formatDuration(execution.duration)}
                </span>
              </button>
            </li>
          );
        })}
      </ul>
    </div>
  );
}
