/**
 * Deploy one output of a completed execution: pick the endpoint and its files, name the
 * deployment (and an alias), create the version, follow its build log, then show the endpoint's
 * URLs and a small "try it" box.
 */
import React, { useEffect, useRef, useState } from 'react';

import { api } from '../api';
import {
  BUILD_ENDS,
  deployBody,
  deployDefaults,
  fileChoices,
  IDeployForm,
  IDeployOptions,
  IDeploymentVersion,
  validateDeploy,
  versionSummary
} from '../deploy';
import { errorMessage } from '../errors';
import { subscribeUrl } from '../events';
import { buildLogUrl } from '../handler';
import { IDatum, IDescribeExecution, ILogEvent } from '../types';
import { BuildLog, Field, TryIt } from './DeployParts';

/** While a version builds after its log ended: read it again this often. */
const FOLLOW_MS = 1000;

export interface IDeployProps {
  execution: IDescribeExecution;
  datum: IDatum;
  outputs: IDatum[];
  onClose: () => void;
  /** A failure, as the panel's error banner shows it (message and hint). */
  onError: (message: string) => void;
}

export function DeployOutput(props: IDeployProps): JSX.Element {
  const { execution, datum, outputs, onError } = props;
  const [options, setOptions] = useState<IDeployOptions | null>(null);
  const [form, setForm] = useState<IDeployForm | null>(null);
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const [version, setVersion] = useState<IDeploymentVersion | null>(null);
  const [lines, setLines] = useState<ILogEvent[]>([]);

  useEffect(() => {
    setOptions(null);
    setVersion(null);
    api.deployOptions(execution.id).then(
      answer => {
        setOptions(answer);
        setForm(deployDefaults(answer, outputs, datum));
      },
      e => onError(errorMessage(e))
    );
  }, [execution.id, datum.id]);

  /** Read the version again until its build is over (the stream ended first). */
  const alive = useRef(true);
  useEffect(
    () => () => {
      alive.current = false;
    },
    []
  );
  const follow = (versionId: string): void => {
    api.deploymentVersion(versionId).then(
      next => {
        if (!alive.current) {
          return;
        }
        setVersion(next);
        if (!BUILD_ENDS.includes(next.status)) {
          window.setTimeout(() => follow(versionId), FOLLOW_MS);
        } else if (next.status === 'failed') {
          onError(`Deployment ${versionSummary(next)}`);
        }
      },
      e => onError(errorMessage(e))
    );
  };

  // The build log of the version's endpoint, until its build is over; then the version again.
  const endpointId = version?.endpoints[0]?.id;
  const building = version !== null && !BUILD_ENDS.includes(version.status);
  useEffect(() => {
    if (!endpointId || !version || !building) {
      return;
    }
    setLines([]);
    return subscribeUrl(buildLogUrl(endpointId), event => {
      if (event.kind === 'log') {
        setLines(previous => [...previous, event.event]);
      } else if (event.kind === 'end' || event.kind === 'error') {
        if (event.kind === 'error') {
          onError(event.message);
        }
        follow(version.id);
      }
    });
  }, [endpointId, building]);

  const update = (change: Partial<IDeployForm>): void =>
    setForm(current => (current ? { ...current, ...change } : current));

  const submit = async (): Promise<void> => {
    if (!options || !form) {
      return;
    }
    const found = validateDeploy(form, options);
    setErrors(found);
    if (Object.keys(found).length) {
      return;
    }
    setBusy(true);
    try {
      setVersion(await api.deploy(deployBody(execution.id, form, options)));
    } catch (e) {
      onError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  const endpoint = options?.endpoints.find(ep => ep.name === form?.endpoint);
  return (
    <section
      className="jp-Valohai-deploy"
      aria-label="Deploy"
      data-datum={datum.name}
      data-state={version?.status ?? (options ? 'form' : 'loading')}
    >
      <h4 className="jp-Valohai-subheading">
        Deploy {datum.name}{' '}
        <button
          className="jp-Valohai-linkButton"
          onClick={props.onClose}
          aria-label="Close deploy"
        >
          ×
        </button>
      </h4>
      {!options && <div className="jp-Valohai-note">Loading endpoints…</div>}
      {options?.problem && (
        <div className="jp-Valohai-error" role="note">
          {options.problem.message} {options.problem.hint ?? ''}
        </div>
      )}
      {options && form && !options.problem && !version && (
        <div className="jp-Valohai-deployForm">
          <Field label="Endpoint" error={errors.endpoint}>
            <select
              className="jp-Valohai-input"
              value={form.endpoint}
              onChange={event => {
                const next = options.endpoints.find(
                  ep => ep.name === event.target.value
                );
                update({
                  endpoint: event.target.value,
                  files: fileChoices(next, outputs, datum)
                });
              }}
            >
              {options.endpoints.map(ep => (
                <option key={ep.name} value={ep.name}>
                  {ep.name} ({ep.image})
                </option>
              ))}
            </select>
          </Field>
          {endpoint?.files.map(file => (
            <Field
              key={file.name}
              label={`File ${file.name} (${file.path})`}
              error={errors[`file:${file.name}`]}
            >
              <select
                className="jp-Valohai-input"
                value={form.files[file.name] ?? ''}
                onChange={event =>
                  update({
                    files: { ...form.files, [file.name]: event.target.value }
                  })
                }
              >
                {outputs.map(out => (
                  <option key={out.id} value={out.id}>
                    {out.name}
                  </option>
                ))}
              </select>
            </Field>
          ))}
          <Field label="Deployment" error={errors.deployment}>
            <input
              className="jp-Valohai-input"
              list="jp-Valohai-deployments"
              value={form.deployment}
              onChange={event => update({ deployment: event.target.value })}
            />
            <datalist id="jp-Valohai-deployments">
              {options.deployments.map(d => (
                <option key={d.id} value={d.name} />
              ))}
            </datalist>
          </Field>
          <Field label="Alias (optional)" error={errors.alias}>
            <input
              className="jp-Valohai-input"
              placeholder="staging"
              value={form.alias}
              onChange={event => update({ alias: event.target.value })}
            />
          </Field>
          <Field label="Registry (optional)" error={errors.registry}>
            <input
              className="jp-Valohai-input"
              placeholder="host:port"
              value={form.registry}
              onChange={event => update({ registry: event.target.value })}
            />
          </Field>
          <button
            className="jp-Valohai-button jp-Valohai-runButton"
            disabled={busy}
            onClick={() => void submit()}
          >
            Create version
          </button>
        </div>
      )}
      {version && (
        <>
          <div className="jp-Valohai-note jp-Valohai-versionState">
            {version.deployment.name} {version.name}: {versionSummary(version)}
          </div>
          <BuildLog lines={lines} />
          {version.status === 'running' && (
            <TryIt version={version} onError={onError} />
          )}
        </>
      )}
    </section>
  );
}
