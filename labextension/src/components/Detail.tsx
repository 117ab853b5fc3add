/** One execution: live logs, metrics, parameters, outputs, Stop, re-run with changes. */
import React, { useEffect, useLayoutEffect, useRef, useState } from 'react';

import {
  cellProgress,
  formatDuration,
  formatSize,
  ILiveState,
  isTerminal
} from '../state';
import { IDatum, IDescribeExecution } from '../types';
import { DeployOutput } from './Deploy';
import { StatusBadge } from './Executions';
import { MetricChart } from './MetricChart';

function Logs(props: { live: ILiveState | undefined }): JSX.Element {
  const ref = useRef<HTMLPreElement>(null);
  const stick = useRef(true);
  const logs = props.live?.logs ?? [];
  useLayoutEffect(() => {
    const pre = ref.current;
    if (pre && stick.current) {
      pre.scrollTop = pre.scrollHeight;
    }
  }, [logs.length]);
  return (
    <pre
      ref={ref}
      className="jp-Valohai-logs"
      aria-label="Logs"
      onScroll={event => {
        const pre = event.currentTarget;
        stick.current =
          pre.scrollHeight - pre.scrollTop - pre.clientHeight < 20;
      }}
    >
      {props.live?.dropped ? (
        <div className="jp-Valohai-note">
          … {props.live.dropped} earlier lines
        </div>
      ) : null}
      {logs.map((line, i) => (
        <div key={i} className={`jp-Valohai-log jp-Valohai-log-${line.stream}`}>
          {line.message}
        </div>
      ))}
      {!logs.length && (
        <span className="jp-Valohai-note">No log lines yet.</span>
      )}
    </pre>
  );
}

export interface IDetailProps {
  execution: IDescribeExecution;
  live: ILiveState | undefined;
  outputs: IDatum[] | null;
  outputsError: string;
  busy: boolean;
  onBack: () => void;
  onStop: () => void;
  onRerun: () => void;
  onOutputs: () => void;
  onOpenOutput: (datum: IDatum) => void;
  onDownloadOutput: (datum: IDatum) => void;
  /** A failure to show in the panel's banner (the deploy section's). */
  onError: (message: string) => void;
}

export function ExecutionDetail(props: IDetailProps): JSX.Element {
  const { execution, live } = props;
  const terminal = isTerminal(execution.status);
  const cells = live ? cellProgress(live) : null;
  const running = live
    ? Object.values(live.cells).find(cell => cell.state === 'running')
    : undefined;
  const metrics = Object.values(live?.metrics ?? {});
  const parameters = Object.entries(execution.parameters ?? {});
  const [deploying, setDeploying] = useState<IDatum | null>(null);
  const canDeploy = execution.status === 'complete';
  useEffect(() => setDeploying(null), [execution.id]);

  // outputs exist once the execution ends: load them then
  useEffect(() => {
    if (terminal) {
      props.onOutputs();
    }
  }, [execution.id, terminal]);

  return (
    <div
      className="jp-Valohai-detail"
      data-execution={execution.id}
      data-status={execution.status}
    >
      <div className="jp-Valohai-detailHeader">
        <button
          className="jp-Valohai-linkButton"
          onClick={props.onBack}
          aria-label="Back to the list"
        >
          ←
        </button>
        <span className="jp-Valohai-counter">#{execution.counter}</span>
        <span className="jp-Valohai-itemTitle">
          {execution.title || execution.step}
        </span>
        <StatusBadge status={execution.status} />
      </div>
      <div className="jp-Valohai-actions">
        <button
          className="jp-Valohai-button jp-Valohai-stop"
          disabled={terminal || execution.status === 'stopping' || props.busy}
          onClick={props.onStop}
        >
          Stop
        </button>
        <button className="jp-Valohai-button" onClick={props.onRerun}>
          Re-run with changes
        </button>
      </div>
      <dl className="jp-Valohai-facts">
        {execution.environment && (
          <>
            <dt>Environment</dt>
            <dd>{execution.environment.name || execution.environment.slug}</dd>
          </>
        )}
        {execution.image && (
          <>
            <dt>Image</dt>
            <dd>{execution.image}</dd>
          </>
        )}
        {execution.duration !== undefined && execution.duration !== null && (
          <>
            <dt>Duration</dt>
            <dd>{formatDuration(execution.duration)}</dd>
          </>
        )}
        {cells && (
          <>
            <dt>Cells</dt>
            <dd>
              {cells}
              {running && !terminal
                ? ` · running [${running.position}] ${running.source}`
                : ''}
            </dd>
          </>
        )}
        {execution.status_message && (
          <>
            <dt>Message</dt>
            <dd>{execution.status_message}</dd>
          </>
        )}
      </dl>

      <h4 className="jp-Valohai-subheading">Logs</h4>
      <Logs live={live} />

      {metrics.length > 0 && <h4 className="jp-Valohai-subheading">Metrics</h4>}
      <div className="jp-Valohai-charts">
        {metrics.map(series => (
          <MetricChart key={series.name} series={series} />
        ))}
      </div>

      <h4 className="jp-Valohai-subheading">Parameters</h4>
      {parameters.length ? (
        <table className="jp-Valohai-table">
          <tbody>
            {parameters.map(([name, value]) => (
              <tr key={name} data-param={name}>
                <th>{name}</th>
                <td>{JSON.stringify(value)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : (
        <div className="jp-Valohai-note">None.</div>
      )}

      <h4 className="jp-Valohai-subheading">Outputs</h4>
      {!terminal && (
        <div className="jp-Valohai-note">
          Outputs are listed when the execution ends.
        </div>
      )}
      {props.outputsError && (
        <div className="jp-Valohai-error">{props.outputsError}</div>
      )}
      {terminal && props.outputs && !props.outputs.length && (
        <div className="jp-Valohai-note">This execution saved no outputs.</div>
      )}
      <ul className="jp-Valohai-list jp-Valohai-outputs" aria-label="Outputs">
        {(props.outputs ?? []).map(datum => (
          <li
            key={datum.id}
            className="jp-Valohai-output"
            data-output={datum.name}
          >
            <span className="jp-Valohai-outputName" title={datum.sha256 ?? ''}>
              {datum.name}
            </span>
            <span className="jp-Valohai-size">{formatSize(datum.size)}</span>
            <button
              className="jp-Valohai-linkButton"
              onClick={() => props.onOpenOutput(datum)}
            >
              Open in Lab
            </button>
            <button
              className="jp-Valohai-linkButton"
              onClick={() => props.onDownloadOutput(datum)}
            >
              Download
            </button>
            <button
              className="jp-Valohai-linkButton"
              disabled={!canDeploy}
              title={
                canDeploy
                  ? 'Deploy this output as an HTTP endpoint'
                  : 'Only the outputs of a complete execution deploy.'
              }
              onClick={() => setDeploying(datum)}
            >
              Deploy
            </button>
          </li>
        ))}
      </ul>
      {deploying && props.outputs && (
        <DeployOutput
          execution={execution}
          datum={deploying}
          outputs={props.outputs}
          onClose={() => setDeploying(null)}
          onError={props.onError}
        />
      )}
    </div>
  );
}
