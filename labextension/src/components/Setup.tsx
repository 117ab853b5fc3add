/** The top of the panel: connection state, project picker/create, environment and image. */
import React, { useState } from 'react';

import {
  environmentLabel,
  IConnectionSummary,
  repositoryUrl
} from '../answers';
import { IDescribeEnvironment, IDescribeProject } from '../types';

export function ConnectionBar(props: {
  summary: IConnectionSummary | null;
  onRefresh: () => void;
}): JSX.Element {
  const { summary } = props;
  let text = 'Connecting…';
  if (summary) {
    text = summary.ok
      ? `${summary.kind} ${summary.url}${summary.user ? ` · logged in as ${summary.user}` : ''}`
      : summary.problem;
  }
  const state = !summary ? 'pending' : summary.ok ? 'ok' : 'down';
  return (
    <div
      className={`jp-Valohai-connection jp-Valohai-connection-${state}`}
      data-state={state}
    >
      <span className="jp-Valohai-dot" aria-hidden="true" />
      <span className="jp-Valohai-connection-text" title={summary?.url ?? ''}>
        {text}
      </span>
      <button
        className="jp-Valohai-linkButton"
        onClick={props.onRefresh}
        title="Reconnect and reload"
      >
        Refresh
      </button>
    </div>
  );
}

export function ProjectPicker(props: {
  projects: IDescribeProject[];
  selected: string | null;
  onSelect: (id: string) => void;
  onCreate: (name: string) => Promise<boolean>;
}): JSX.Element {
  const [creating, setCreating] = useState(false);
  const [name, setName] = useState('');
  const [busy, setBusy] = useState(false);
  const project = props.projects.find(p => p.id === props.selected);
  const repo = project ? repositoryUrl(project) : '';

  const create = async (event: React.FormEvent): Promise<void> => {
    event.preventDefault();
    setBusy(true);
    const ok = await props.onCreate(name.trim());
    setBusy(false);
    if (ok) {
      setName('');
      setCreating(false);
    }
  };

  return (
    <div className="jp-Valohai-section jp-Valohai-project">
      <label className="jp-Valohai-row">
        <span className="jp-Valohai-label">Project</span>
        <select
          className="jp-Valohai-select"
          aria-label="Project"
          value={props.selected ?? ''}
          onChange={event => props.onSelect(event.target.value)}
        >
          {!props.projects.length && (
            <option value="">(no projects yet)</option>
          )}
          {props.projects.map(p => (
            <option key={p.id} value={p.id}>
              {p.name}
            </option>
          ))}
        </select>
        <button
          className="jp-Valohai-linkButton"
          onClick={() => setCreating(!creating)}
          aria-expanded={creating}
        >
          New
        </button>
      </label>
      {repo && <div className="jp-Valohai-note">Repository: {repo}</div>}
      {creating && (
        <form className="jp-Valohai-create" onSubmit={create}>
          <input
            className="jp-Valohai-input"
            aria-label="New project name"
            placeholder="project name"
            value={name}
            onChange={event => setName(event.target.value)}
            autoFocus
          />
          <button
            type="submit"
            className="jp-Valohai-button"
            disabled={busy || !name.trim()}
          >
            Create
          </button>
          <input
            className="jp-Valohai-input"
            aria-label="Git repository URL"
            placeholder="link a Git repository (https://…)"
            disabled
            title="Linking a Git repository needs support on the master; not available yet."
          />
          <div className="jp-Valohai-note">
            Linking a Git repository is not available yet: runs send a snapshot
            of the notebook's folder.
          </div>
        </form>
      )}
    </div>
  );
}

export function EnvironmentPicker(props: {
  environments: IDescribeEnvironment[];
  selected: string | null;
  image: string;
  /** The server's configured image, shown when none is typed. */
  defaultImage: string;
  onSelect: (id: string) => void;
  onImage: (image: string) => void;
}): JSX.Element {
  return (
    <div className="jp-Valohai-section">
      <label className="jp-Valohai-row">
        <span className="jp-Valohai-label">Environment</span>
        <select
          className="jp-Valohai-select"
          aria-label="Environment"
          value={props.selected ?? ''}
          onChange={event => props.onSelect(event.target.value)}
        >
          {!props.environments.length && (
            <option value="">(no environments)</option>
          )}
          {props.environments.map(env => (
            <option
              key={env.id}
              value={env.id}
              disabled={env.enabled === false}
            >
              {environmentLabel(env)}
            </option>
          ))}
        </select>
      </label>
      <label className="jp-Valohai-row">
        <span className="jp-Valohai-label">Image</span>
        <input
          className="jp-Valohai-input"
          aria-label="Docker image"
          placeholder={`${props.defaultImage || 'python:3.11'} (default)`}
          value={props.image}
          onChange={event => props.onImage(event.target.value)}
        />
      </label>
    </div>
  );
}

/** A dismissable message above the panel: an error (alert) or a notice (status). */
export function Banner(props: {
  kind: 'error' | 'notice';
  text: string;
  onDismiss: () => void;
}): JSX.Element {
  return (
    <div
      className={`jp-Valohai-${props.kind} jp-Valohai-banner`}
      role={props.kind === 'error' ? 'alert' : 'status'}
    >
      {props.text}
      <button
        className="jp-Valohai-linkButton"
        onClick={props.onDismiss}
        aria-label="Dismiss"
      >
        ×
      </button>
    </div>
  );
}
