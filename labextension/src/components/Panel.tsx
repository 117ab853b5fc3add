/** The sidebar panel: ties the server's answers, the live streams and the sections together. */
import { JupyterFrontEnd } from '@jupyterlab/application';
import React, { useEffect, useRef, useState } from 'react';

import { api } from '../api';
import { errorMessage } from '../errors';
import { initialValues, prefillFrom, validate } from '../form';
import { PanelModel } from '../model';
import { rerunPath, setStatus, StreamEvent, upsertExecution } from '../state';
import { ExecutionDetail } from './Detail';
import { ExecutionList } from './Executions';
import { useLiveStreams, useSignal } from './hooks';
import { useOutputs } from './outputs';
import { RunForm } from './RunForm';
import {
  Banner,
  ConnectionBar,
  EnvironmentPicker,
  ProjectPicker
} from './Setup';
import { useConnection } from './useConnection';
import { useExecutionList } from './useExecutionList';
import { NO_ERRORS, useNotebookForm } from './useNotebookForm';
import { WorkerList } from './Workers';

/** Notices (not errors) go away by themselves after this long. */
const NOTICE_MS = 8000;

const basename = (path: string): string => path.split('/').pop() ?? path;

export function Panel(props: {
  model: PanelModel;
  app: JupyterFrontEnd;
}): JSX.Element {
  const { model, app } = props;
  const formRef = useRef<HTMLDivElement>(null);

  const [error, setError] = useState('');
  const [notice, setNotice] = useState('');
  const [busy, setBusy] = useState(false);
  const [selected, setSelected] = useState<string | null>(null);
  const fail = (e: unknown): void => setError(errorMessage(e));

  useEffect(() => {
    if (!notice) {
      return;
    }
    const timer = window.setTimeout(() => setNotice(''), NOTICE_MS);
    return () => window.clearTimeout(timer);
  }, [notice]);

  const conn = useConnection(setError, setNotice);
  const { connection, projectId, environmentId, image } = conn;
  const form = useNotebookForm(model);
  const list = useExecutionList(connection?.ok ? projectId : null, setError);

  useSignal(model.runRequested, panel => {
    setSelected(null);
    form.setNotebookPath(panel.context.path);
    window.requestAnimationFrame(() => {
      formRef.current?.scrollIntoView({ block: 'start' });
      formRef.current
        ?.querySelector<HTMLElement>('input, textarea, button')
        ?.focus();
    });
  });

  const run = async (): Promise<void> => {
    const { notebookPath, values, title } = form;
    if (!form.spec || !notebookPath) {
      return;
    }
    const result = validate(form.spec, values);
    form.setErrors(result.errors);
    if (!result.ok) {
      setError('Some fields are not valid: fix the marked ones and run again.');
      return;
    }
    setError('');
    setBusy(true);
    try {
      const panel = model.notebook;
      if (
        panel &&
        panel.context.path === notebookPath &&
        panel.context.model.dirty
      ) {
        await panel.context.save(); // the server runs the file as saved
      }
      const execution = await api.run({
        path: notebookPath,
        parameters: result.parameters,
        inputs: result.inputs,
        project: projectId ?? undefined,
        environment: environmentId ?? undefined,
        image: image.trim() || undefined,
        title: title.trim() || undefined
      });
      setNotice(`Execution #${execution.counter} ${execution.status}.`);
      if (execution.project?.id && execution.project.id !== projectId) {
        conn.setProjectId(execution.project.id);
        api.projects().then(conn.setProjects, fail);
      }
      list.setExecutions(items => upsertExecution(items, execution));
      setSelected(execution.id);
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };

  const onEvent = (id: string, event: StreamEvent): void => {
    if (event.kind === 'end') {
      list.setExecutions(items => setStatus(items, id, event.status));
      list.refresh(id); // duration, end time, message
    } else if (event.kind === 'error' && id === selected) {
      setError(event.message);
    }
  };

  // Live logs, cells and metrics only for the execution shown in detail.
  const live = useLiveStreams(selected ? [selected] : [], onEvent);
  const execution = list.executions.find(item => item.id === selected) ?? null;
  const outputs = useOutputs(execution?.id ?? null, app);

  const stop = async (): Promise<void> => {
    if (!execution) {
      return;
    }
    setBusy(true);
    try {
      const answer = await api.stop(execution.id);
      setNotice(answer.message || `Stopping #${execution.counter}.`);
      list.refresh(execution.id);
    } catch (e) {
      fail(e);
    } finally {
      setBusy(false);
    }
  };

  const rerun = (): void => {
    if (!execution) {
      return;
    }
    const { notebookPath } = form;
    const target = rerunPath(execution);
    if (target && target !== notebookPath) {
      // the notebook it ran: its form is loaded, then prefilled
      form.prefillAfterLoad(target, execution);
      void app.commands.execute('docmanager:open', { path: target });
    } else if (form.spec) {
      form.setValues(
        initialValues(form.spec, prefillFrom(form.spec, execution))
      );
      form.setErrors(NO_ERRORS);
    }
    form.setTitle(execution.title ?? '');
    if (execution.environment?.id) {
      conn.setEnvironmentId(execution.environment.id);
    }
    conn.setImage(execution.image ?? '');
    form.setPrefilledFrom(`execution #${execution.counter}`);
    const ran = execution.notebook ? basename(execution.notebook) : '';
    if (!target && ran && notebookPath && ran !== basename(notebookPath)) {
      setNotice(
        `#${execution.counter} ran ${ran}; the form is for ${notebookPath}. Open ${ran} to re-run it.`
      );
    }
    setSelected(null);
  };

  return (
    <div className="jp-Valohai-panel">
      <ConnectionBar summary={connection} onRefresh={conn.load} />
      {error && (
        <Banner kind="error" text={error} onDismiss={() => setError('')} />
      )}
      {notice && !error && (
        <Banner kind="notice" text={notice} onDismiss={() => setNotice('')} />
      )}
      {connection?.ok && (
        <>
          <ProjectPicker
            projects={conn.projects}
            selected={projectId}
            onSelect={id => {
              setSelected(null);
              conn.setProjectId(id);
            }}
            onCreate={conn.createProject}
          />
          <EnvironmentPicker
            environments={conn.environments}
            selected={environmentId}
            image={image}
            defaultImage={conn.defaultImage}
            onSelect={conn.setEnvironmentId}
            onImage={conn.setImage}
          />
          <WorkerList
            environmentId={environmentId}
            projectId={projectId}
            onShow={setSelected}
            canShow={id => list.executions.some(item => item.id === id)}
          />
          {execution ? (
            <ExecutionDetail
              execution={execution}
              live={live[execution.id]}
              outputs={outputs.outputs}
              outputsError={outputs.error}
              busy={busy}
              onBack={() => setSelected(null)}
              onStop={() => void stop()}
              onRerun={rerun}
              onOutputs={outputs.load}
              onOpenOutput={datum => void outputs.open(datum)}
              onDownloadOutput={datum => void outputs.download(datum)}
              onError={setError}
            />
          ) : (
            <>
              <div ref={formRef}>
                <RunForm
                  notebookPath={form.notebookPath}
                  spec={form.spec}
                  specError={form.specError}
                  values={form.values}
                  errors={form.errors}
                  title={form.title}
                  busy={busy}
                  canRun={Boolean(form.spec) && !form.specError}
                  prefilledFrom={form.prefilledFrom}
                  onValues={form.setValues}
                  onTitle={form.setTitle}
                  onRun={() => void run()}
                  onReset={form.reset}
                />
              </div>
              <ExecutionList
                executions={list.executions}
                selected={selected}
                loading={list.loading}
                problem={list.problem}
                onSelect={setSelected}
                onRefresh={list.reload}
              />
            </>
          )}
        </>
      )}
    </div>
  );
}
