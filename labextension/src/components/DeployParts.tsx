/** Pieces of the deploy section: a labelled field, the build log, the "try it" box. */
import React, { useLayoutEffect, useRef, useState } from 'react';

import { api } from '../api';
import {
  endpointUrls,
  formatAnswer,
  IDeploymentVersion,
  parsePayload,
  SAMPLE_PAYLOAD
} from '../deploy';
import { errorMessage } from '../errors';
import { ILogEvent } from '../types';

export function Field(props: {
  label: string;
  error?: string;
  children: React.ReactNode;
}): JSX.Element {
  return (
    <label className="jp-Valohai-field">
      <span className="jp-Valohai-fieldLabel">{props.label}</span>
      {props.children}
      {props.error && (
        <span className="jp-Valohai-fieldError">{props.error}</span>
      )}
    </label>
  );
}

export function BuildLog(props: { lines: ILogEvent[] }): JSX.Element {
  const ref = useRef<HTMLPreElement>(null);
  useLayoutEffect(() => {
    if (ref.current) {
      ref.current.scrollTop = ref.current.scrollHeight;
    }
  }, [props.lines.length]);
  return (
    <pre ref={ref} className="jp-Valohai-logs" aria-label="Build log">
      {props.lines.map((line, i) => (
        <div key={i} className={`jp-Valohai-log jp-Valohai-log-${line.stream}`}>
          {line.message}
        </div>
      ))}
      {!props.lines.length && (
        <span className="jp-Valohai-note">Waiting for the builder…</span>
      )}
    </pre>
  );
}

export function TryIt(props: {
  version: IDeploymentVersion;
  onError: (message: string) => void;
}): JSX.Element {
  const endpoint = props.version.endpoints[0];
  const [text, setText] = useState(SAMPLE_PAYLOAD);
  const [problem, setProblem] = useState('');
  const [answer, setAnswer] = useState('');
  const [busy, setBusy] = useState(false);

  const send = async (): Promise<void> => {
    const parsed = parsePayload(text);
    if (!parsed.ok) {
      setProblem(parsed.error);
      return;
    }
    setProblem('');
    setBusy(true);
    try {
      setAnswer(
        formatAnswer(await api.tryEndpoint(endpoint.id, parsed.payload))
      );
    } catch (e) {
      props.onError(errorMessage(e));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div className="jp-Valohai-try">
      <ul className="jp-Valohai-list" aria-label="Endpoint URLs">
        {endpointUrls(endpoint).map(item => (
          <li key={item.label} data-url={item.label}>
            <span className="jp-Valohai-label">{item.label}</span>{' '}
            <code className="jp-Valohai-url">{item.url}</code>
          </li>
        ))}
      </ul>
      <Field label="Try it: JSON to POST" error={problem}>
        <textarea
          className="jp-Valohai-input jp-Valohai-payload"
          rows={4}
          value={text}
          onChange={event => setText(event.target.value)}
        />
      </Field>
      <button
        className="jp-Valohai-button"
        disabled={busy}
        onClick={() => void send()}
      >
        Send
      </button>
      {answer && (
        <pre className="jp-Valohai-answer" aria-label="Answer">
          {answer}
        </pre>
      )}
    </div>
  );
}
